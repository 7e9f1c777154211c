/**
 * What a user applies, applied to the real control plane with kubectl: config/default (rendered by
 * kubectl's kustomize, server-side dry run, then for real), and every file in examples/ with the
 * operator running as the ServiceAccount config/default creates.
 */
import { execFile, spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import type { KubernetesObject, V1ConfigMap, V1Deployment, V1Pod, V1Service } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ControlPlane } from "../controlplane/control-plane.ts";
import { eventually, startTestControlPlane, testNamespace } from "../controlplane/testing.ts";
import { errorMessage } from "../lib/logger.ts";
import { projectRoot } from "../lib/repo.ts";
import { loadCrd } from "../operator/api/crd.ts";
import type { PingPongPair } from "../operator/api/types.ts";
import { objectsIn, objectsInYaml, operatorServiceAccount, rbacObjects } from "../controlplane/install.ts";
import { type RunningOperator, startOperator } from "../operator/operator.ts";
import { childNames } from "../operator/pingpongpair/names.ts";
import { connectionFromKubeconfig } from "../operator/runtime/cluster-connection.ts";
import { KubeClient } from "../operator/runtime/kube-client.ts";
import { resources } from "../operator/runtime/resources.ts";
import { testOperatorOptions } from "../operator/testing/environment.ts";

const run = promisify(execFile);
const root = projectRoot();
const operatorNamespace = "pingpong-system";

let plane: ControlPlane;
let admin: KubeClient;

async function kubectl(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(plane.binaries.kubectl, ["--kubeconfig", plane.kubeconfigPath, ...args], { cwd: root });
}

/** kubectl with a manifest on stdin; resolves with its output whatever the exit code. */
function kubectlWithInput(
  input: string,
  ...args: string[]
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(plane.binaries.kubectl, ["--kubeconfig", plane.kubeconfigPath, ...args]);
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, output }));
    child.stdin.end(input);
  });
}

const key = (o: KubernetesObject) => `${o.kind ?? ""}/${o.metadata?.name ?? ""}`;

/** `kubectl apply -k config/default`, as a user installs the operator; applying again changes nothing. */
async function applyDefault(): Promise<void> {
  await kubectl("apply", "--server-side", "-k", "config/default");
  await kubectl("wait", "--for=condition=Established", "--timeout=30s", "crd/pingpongpairs.pingpong.dev");
}

let rendered: KubernetesObject[];
const renderedDeployment = () => rendered.find((o) => o.kind === "Deployment") as V1Deployment;

beforeAll(async () => {
  plane = await startTestControlPlane();
  admin = new KubeClient(await connectionFromKubeconfig(plane.adminKubeconfig()));
  rendered = objectsInYaml((await kubectl("kustomize", "config/default")).stdout);
});

afterAll(async () => {
  // Unset when beforeAll failed to start it.
  await (plane as ControlPlane | undefined)?.stop();
});

describe("config/default", () => {
  it("renders the namespace, the CRD, the RBAC, the operator Deployment and its metrics Service", () => {
    expect(rendered.map(key).sort()).toEqual(
      [
        "Namespace/pingpong-system",
        "CustomResourceDefinition/pingpongpairs.pingpong.dev",
        "ServiceAccount/pingpong-operator",
        "ClusterRole/pingpong-operator",
        "ClusterRoleBinding/pingpong-operator",
        "Role/pingpong-operator-leader-election",
        "RoleBinding/pingpong-operator-leader-election",
        "Deployment/pingpong-operator",
        "Service/pingpong-operator-metrics",
      ].sort(),
    );
    for (const object of rendered.filter(
      (o) => !["Namespace", "CustomResourceDefinition"].includes(o.kind ?? ""),
    ))
      if (!object.kind?.startsWith("Cluster"))
        expect(object.metadata?.namespace, key(object)).toBe(operatorNamespace);
  });

  it("is what the operator tests install: the CRD from crds/ and the RBAC from config/rbac", async () => {
    const crd = rendered.find((o) => o.kind === "CustomResourceDefinition");
    expect(crd).toEqual(loadCrd());
    // `kubectl apply -k crds/` installs the CRD alone.
    expect(objectsInYaml((await kubectl("kustomize", "crds")).stdout)).toEqual([loadCrd()]);
    const rbac = rendered.filter((o) => /Role|ServiceAccount/.test(o.kind ?? ""));
    expect(new Map(rbac.map((o) => [key(o), o]))).toEqual(
      new Map(rbacObjects(operatorNamespace).map((o) => [key(o), o])),
    );
  });

  it("runs the workloads on the operator's own image, wherever the image is set", () => {
    const container = renderedDeployment().spec?.template.spec?.containers[0];
    expect(container?.args).toEqual(["operator"]);
    expect(container?.env?.find((e) => e.name === "PINGPONG_IMAGE")?.value).toBe(container?.image);
  });

  it("passes a server-side dry run, with nothing for Pod Security restricted to warn about", async () => {
    // Namespaced objects cannot be dry-run into a namespace that does not exist yet.
    await kubectl("apply", "--server-side", "-f", "config/default/namespace.yaml");
    const dryRun = await kubectl("apply", "--server-side", "--dry-run=server", "-k", "config/default");
    expect(dryRun.stdout.trim().split("\n")).toHaveLength(rendered.length);
    expect(dryRun.stdout).toContain(
      "customresourcedefinition.apiextensions.k8s.io/pingpongpairs.pingpong.dev serverside-applied (server dry run)",
    );
    expect(dryRun.stderr).not.toMatch(/warning/i);
    // Nothing but the namespace was stored.
    expect(
      await admin.get(resources.customResourceDefinition, undefined, "pingpongpairs.pingpong.dev"),
    ).toBeUndefined();

    // The same check catches a pod template that breaks the policy.
    const insecure = structuredClone(renderedDeployment());
    delete insecure.spec?.template.spec?.securityContext;
    delete insecure.spec?.template.spec?.containers[0]?.securityContext;
    const warned = await kubectlWithInput(
      JSON.stringify(insecure),
      "apply",
      "--server-side",
      "--dry-run=server",
      "-f",
      "-",
    );
    expect(warned.output).toContain('would violate PodSecurity "restricted:latest"');
  });

  it("applies: the CRD is established and the operator's pod is admitted under Pod Security restricted", async () => {
    await applyDefault();
    const pod = await eventually("the operator's pod", async () => {
      const { items } = await admin.list<V1Pod>(resources.pod, operatorNamespace);
      return items[0];
    });
    expect(pod.spec?.serviceAccountName).toBe(operatorServiceAccount);
    expect(pod.spec?.containers[0]?.securityContext?.readOnlyRootFilesystem).toBe(true);
    const service = await admin.get<V1Service>(
      resources.service,
      operatorNamespace,
      "pingpong-operator-metrics",
    );
    for (const [label, value] of Object.entries(service?.spec?.selector ?? {}))
      expect(pod.metadata?.labels?.[label]).toBe(value);
    expect(service?.spec?.ports?.[0]?.targetPort).toBe(pod.spec?.containers[0]?.ports?.[0]?.name);
  });
});

describe("examples/", () => {
  let operator: RunningOperator | undefined;
  const exampleFiles = readdirSync(join(root, "examples")).filter((f) => f.endsWith(".yaml"));

  beforeAll(async () => {
    // The operator runs as the ServiceAccount config/default creates, with leader election, as
    // the Deployment would run it.
    await applyDefault();
    const image = renderedDeployment().spec?.template.spec?.containers[0]?.image ?? "";
    const connection = await connectionFromKubeconfig(
      await plane.serviceAccountKubeconfig(operatorNamespace, operatorServiceAccount),
    );
    operator = await startOperator({ ...testOperatorOptions(connection), image, leaderElection: true });
  });

  afterAll(async () => {
    await operator?.stop();
  });

  /** Applies one example in a fresh namespace enforcing restricted; resolves with its pairs once ready. */
  async function applyExample(file: string): Promise<{ namespace: string; pairs: PingPongPair[] }> {
    const namespace = testNamespace(file.replace(/\.yaml$/, ""));
    await admin.create({
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: namespace, labels: { "pod-security.kubernetes.io/enforce": "restricted" } },
    });
    const applied = await kubectl("apply", "--server-side", "-n", namespace, "-f", join("examples", file));
    expect(applied.stderr).toBe("");
    const names = objectsIn(join(root, "examples", file))
      .filter((o) => o.kind === "PingPongPair")
      .map((o) => o.metadata?.name ?? "");
    const pairs = await Promise.all(
      names.map((name) =>
        eventually(`${namespace}/${name} CertificatesReady`, async () => {
          const pair = await admin.get<PingPongPair>(resources.pingPongPair, namespace, name);
          const ready = pair?.status?.conditions?.find((c) => c.type === "CertificatesReady");
          return ready?.status === "True" ? pair : undefined;
        }),
      ),
    );
    return { namespace, pairs };
  }

  it("has the four examples the README names", () => {
    expect(exampleFiles.sort()).toEqual(
      ["pingpongpair.yaml", "scaled-with-hpa.yaml", "short-lived-certs.yaml", "tls-only.yaml"].sort(),
    );
  });

  it("pingpongpair.yaml: mutual TLS, the ponger asks for client certificates, pods admitted", async () => {
    const { namespace, pairs } = await applyExample("pingpongpair.yaml");
    const names = childNames(pairs[0]?.metadata?.name ?? "");
    const config = await admin.get<V1ConfigMap>(resources.configMap, namespace, names.pongerConfig);
    expect(Object.values(config?.data ?? {}).join("\n")).toContain("clientCA");
    await eventually("the ponger's pod", async () => {
      const { items } = await admin.list<V1Pod>(resources.pod, namespace);
      return items.find((p) => p.metadata?.name?.startsWith(names.ponger));
    });
  });

  it("tls-only.yaml: the ponger asks for no client certificate", async () => {
    const { namespace, pairs } = await applyExample("tls-only.yaml");
    const names = childNames(pairs[0]?.metadata?.name ?? "");
    const config = await admin.get<V1ConfigMap>(resources.configMap, namespace, names.pongerConfig);
    expect(Object.values(config?.data ?? {}).join("\n")).not.toContain("clientCA");
  });

  it("scaled-with-hpa.yaml: the autoscaler reaches the pair through its scale subresource", async () => {
    const { namespace, pairs } = await applyExample("scaled-with-hpa.yaml");
    const names = childNames(pairs[0]?.metadata?.name ?? "");
    const ponger = await eventually("3 ponger replicas", async () => {
      const deployment = await admin.get<V1Deployment>(resources.deployment, namespace, names.ponger);
      return deployment?.spec?.replicas === 3 ? deployment : undefined;
    });
    expect(ponger.spec?.template.spec?.containers[0]?.resources?.requests?.cpu).toBe("50m");
    interface Hpa extends KubernetesObject {
      status?: { conditions?: { type: string; status: string; reason: string; message: string }[] };
    }
    // The controller manager discovers the new resource's scale subresource within a minute
    // (it refreshes its discovery cache every 30 s); until then it reports FailedGetScale.
    let last = "no conditions yet";
    await eventually(
      "the HorizontalPodAutoscaler to read the pair's scale",
      async () => {
        const hpa = await admin.get<Hpa>(resources.horizontalPodAutoscaler, namespace, "scaled-ponger");
        const able = hpa?.status?.conditions?.find((c) => c.type === "AbleToScale");
        if (able) last = `${able.status} ${able.reason}: ${able.message}`;
        return able?.status === "True" && able.reason === "SucceededGetScale" ? able : undefined;
      },
      90_000,
    ).catch((error: unknown) => {
      throw new Error(`${errorMessage(error)}; last AbleToScale: ${last}`);
    });

    // And writes it: below minReplicas it scales up without needing any metrics; the pair's spec
    // changes, and the operator scales the Deployment.
    await admin.mergePatch(resources.horizontalPodAutoscaler, namespace, "scaled-ponger", {
      spec: { minReplicas: 4 },
    });
    await eventually(
      "the autoscaler to scale the pongers to 4",
      async () => {
        const pair = await admin.get<PingPongPair>(resources.pingPongPair, namespace, "scaled");
        const deployment = await admin.get<V1Deployment>(resources.deployment, namespace, names.ponger);
        return pair?.spec?.ponger?.replicas === 4 && deployment?.spec?.replicas === 4 ? true : undefined;
      },
      60_000,
    );
  });

  it("short-lived-certs.yaml: leaves of 10 minutes, renewed 5 minutes before they expire", async () => {
    const { pairs } = await applyExample("short-lived-certs.yaml");
    const leaf = pairs[0]?.status?.certificates?.ponger;
    const [notBefore, notAfter, renewal] = [leaf?.notBefore, leaf?.notAfter, leaf?.renewalTime].map((t) =>
      Date.parse(t ?? ""),
    ) as [number, number, number];
    expect(notAfter - notBefore).toBeLessThanOrEqual(10 * 60_000 + 5 * 60_000); // notBefore is back-dated 5 min
    expect(notAfter - renewal).toBe(5 * 60_000);
    const ca = pairs[0]?.status?.ca;
    expect(Date.parse(ca?.notAfter ?? "") - Date.parse(ca?.renewalTime ?? "")).toBe(20 * 60_000);
  });
});
