/**
 * The operator against a real API server, authenticated as its own ServiceAccount with the shipped
 * RBAC: a pair's children, certificates, scaling, rotation and deletion.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type {
  KubernetesObject,
  V1Deployment,
  V1Pod,
  V1Secret,
  V1Service,
  V1ServiceAccount,
} from "@kubernetes/client-node";
import { parse } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../controlplane/testing.ts";
import type { PingPongPair } from "./api/types.ts";
import { secretText } from "./pingpongpair/certificates.ts";
import type { NetworkPolicy } from "./pingpongpair/children.ts";
import { inspectCertificate } from "../lib/pki/inspect.ts";
import { resources } from "./runtime/resources.ts";
import { OperatorEnvironment, operatorNamespace } from "./testing/environment.ts";

const run = promisify(execFile);
let env: OperatorEnvironment;
let namespace: string;

beforeAll(async () => {
  env = await OperatorEnvironment.start();
  await env.startOperator();
  namespace = await env.namespace("pairs");
});
afterAll(async () => {
  await OperatorEnvironment.stopIfStarted(env);
});

async function secret(name: string): Promise<V1Secret> {
  const found = await env.admin.get<V1Secret>(resources.secret, namespace, name);
  if (!found) throw new Error(`Secret ${name} not found`);
  return found;
}

const serial = async (name: string) =>
  inspectCertificate(secretText(await secret(name), "tls.crt") ?? "").serial;

async function deployment(name: string): Promise<V1Deployment | undefined> {
  return env.admin.get<V1Deployment>(resources.deployment, namespace, name);
}

async function kubectl(...args: string[]): Promise<string> {
  const { stdout } = await run(env.plane.binaries.kubectl, [
    "--kubeconfig",
    env.plane.kubeconfigPath,
    "-n",
    namespace,
    ...args,
  ]);
  return stdout;
}

describe("a PingPongPair", () => {
  let pair: PingPongPair;

  beforeAll(async () => {
    await env.createPair(namespace, "demo");
    pair = await env.condition(namespace, "demo", "CertificatesReady", "True");
  });

  it("gets every child, labelled and owned by the pair", async () => {
    const owned = (object: KubernetesObject | undefined) => {
      expect(object, "child exists").toBeDefined();
      expect(object?.metadata?.ownerReferences).toEqual([
        expect.objectContaining({
          kind: "PingPongPair",
          name: "demo",
          uid: pair.metadata?.uid,
          controller: true,
        }),
      ]);
      expect(object?.metadata?.labels).toMatchObject({
        "app.kubernetes.io/name": "pingpong",
        "app.kubernetes.io/instance": "demo",
        "app.kubernetes.io/managed-by": "pingpong-operator",
      });
    };
    for (const name of ["demo-ca", "demo-ponger-tls", "demo-pinger-tls"]) owned(await secret(name));
    for (const name of ["demo-ponger-config", "demo-pinger-config"])
      owned(await env.admin.get(resources.configMap, namespace, name));
    for (const name of ["demo-ponger", "demo-pinger"]) {
      owned(await deployment(name));
      const account = await env.admin.get<V1ServiceAccount>(resources.serviceAccount, namespace, name);
      owned(account);
      expect(account?.automountServiceAccountToken).toBe(false);
      owned(await env.admin.get(resources.networkPolicy, namespace, name));
    }
    const service = await env.admin.get<V1Service>(resources.service, namespace, "demo-ponger");
    owned(service);
    expect(service?.spec?.ports).toEqual([
      expect.objectContaining({ name: "https", port: 8443, targetPort: "https" }),
    ]);
    // One ponger: no PodDisruptionBudget yet.
    expect(await env.admin.get(resources.podDisruptionBudget, namespace, "demo-ponger")).toBeUndefined();
  });

  it("stores a CA and leaves that openssl verifies, with the right SANs and usages", async () => {
    const dir = await mkdtemp(join(tmpdir(), "operator-certs-"));
    try {
      const ca = await secret("demo-ca");
      const ponger = await secret("demo-ponger-tls");
      const pinger = await secret("demo-pinger-tls");
      expect(ponger.type).toBe("kubernetes.io/tls");
      await writeFile(join(dir, "ca.crt"), secretText(ponger, "ca.crt") ?? "");
      await writeFile(join(dir, "ponger.crt"), secretText(ponger, "tls.crt") ?? "");
      await writeFile(join(dir, "pinger.crt"), secretText(pinger, "tls.crt") ?? "");
      expect(secretText(ponger, "ca.crt")).toBe(secretText(ca, "tls.crt"));
      const verify = async (purpose: string, file: string) =>
        (
          await run("openssl", [
            "verify",
            "-purpose",
            purpose,
            "-CAfile",
            join(dir, "ca.crt"),
            join(dir, file),
          ])
        ).stdout;
      expect(await verify("sslserver", "ponger.crt")).toContain(": OK");
      expect(await verify("sslclient", "pinger.crt")).toContain(": OK");
      const text = (await run("openssl", ["x509", "-in", join(dir, "ponger.crt"), "-noout", "-text"])).stdout;
      expect(text).toMatch(
        new RegExp(
          `DNS:demo-ponger, DNS:demo-ponger.${namespace}, DNS:demo-ponger.${namespace}.svc, DNS:demo-ponger.${namespace}.svc.cluster.local`,
        ),
      );
      expect(text).toMatch(/TLS Web Server Authentication/);
      const pingerText = (
        await run("openssl", [
          "x509",
          "-in",
          join(dir, "pinger.crt"),
          "-noout",
          "-subject",
          "-ext",
          "extendedKeyUsage",
        ])
      ).stdout;
      expect(pingerText).toMatch(/CN ?= ?demo-pinger/);
      expect(pingerText).toMatch(/TLS Web Client Authentication/);
      // The CA key never leaves the CA Secret.
      expect(ponger.data?.["ca.key"]).toBeUndefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("reports certificates, replicas and conditions in status", async () => {
    const current = await env.pair(namespace, "demo");
    const status = current?.status;
    expect(status?.observedGeneration).toBe(current?.metadata?.generation);
    expect(status?.ca?.serial).toBe(await serial("demo-ca"));
    expect(status?.certificates?.ponger?.serial).toBe(await serial("demo-ponger-tls"));
    expect(status?.certificates?.pinger?.serial).toBe(await serial("demo-pinger-tls"));
    expect(status?.ponger?.selector).toBe(
      "app.kubernetes.io/component=ponger,app.kubernetes.io/instance=demo,app.kubernetes.io/name=pingpong",
    );
    const types = status?.conditions?.map((c) => [c.type, c.status, c.reason]);
    expect(types).toEqual([
      ["CertificatesReady", "True", "Issued"],
      ["WorkloadsAvailable", "False", expect.any(String)],
      // No kubelet here: no pinger pod runs, so there is nothing to read.
      ["PingHealthy", "Unknown", "NoPingerRunning"],
      ["Ready", "False", "WorkloadsUnavailable"],
    ]);
    const table = await kubectl("get", "pingpongpairs");
    expect(table).toMatch(/NAME\s+READY\s+PINGERS\s+PONGERS\s+SUCCESS\s+P99\s+CERT-EXPIRES\s+DRILL\s+AGE/);
    expect(table).toMatch(/demo\s+False\s+0\/1\s+0\/1/);
  });

  it("runs pods that Pod Security 'restricted' admits, mounting whole-directory Secrets", async () => {
    // The namespace enforces "restricted": the ReplicaSet controller could not create violating pods.
    const pods = await eventually("ponger and pinger pods", async () => {
      const list = await env.admin.list<V1Pod>(resources.pod, namespace, "app.kubernetes.io/instance=demo");
      return list.items.length >= 2 ? list.items : undefined;
    });
    for (const pod of pods) {
      expect(pod.spec?.automountServiceAccountToken).toBe(false);
      const container = pod.spec?.containers[0];
      expect(container?.volumeMounts?.find((m) => m.name === "tls")).toMatchObject({
        mountPath: "/etc/pingpong/tls",
        readOnly: true,
      });
      expect(container?.volumeMounts?.some((m) => m.subPath !== undefined)).toBe(false);
      expect(container?.livenessProbe?.httpGet?.path).toBe("/healthz");
      expect(container?.readinessProbe?.httpGet?.path).toBe("/readyz");
      expect(pod.spec?.volumes?.some((v) => v.secret?.secretName === "demo-ca")).toBe(false);
    }
    const ponger = await deployment("demo-ponger");
    const config = parse(
      (
        await env.admin.get<KubernetesObject & { data: Record<string, string> }>(
          resources.configMap,
          namespace,
          "demo-pinger-config",
        )
      )?.data["pinger.yaml"] ?? "",
    ) as { ponger: { url: string; clientCertificate?: string } };
    expect(config.ponger.url).toBe(`https://demo-ponger.${namespace}.svc:8443/ping`);
    expect(config.ponger.clientCertificate).toBe("/etc/pingpong/tls/tls.crt");
    expect(ponger?.spec?.template.spec?.containers[0]?.image).toBe("pingpong-operator:test");
  });

  it("admits only the pinger to the ponger, and the operator's and scrapers' namespaces to metrics", async () => {
    const policy = await env.admin.get<NetworkPolicy>(resources.networkPolicy, namespace, "demo-ponger");
    expect(policy?.spec.ingress).toEqual([
      {
        from: [
          {
            podSelector: {
              matchLabels: {
                "app.kubernetes.io/name": "pingpong",
                "app.kubernetes.io/instance": "demo",
                "app.kubernetes.io/component": "pinger",
              },
            },
          },
        ],
        ports: [{ protocol: "TCP", port: 8443 }],
      },
      {
        from: [
          { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": operatorNamespace } } },
          { namespaceSelector: { matchLabels: { "pingpong.dev/scrape-metrics": "true" } } },
        ],
        ports: [{ protocol: "TCP", port: 9090 }],
      },
    ]);
  });
});

describe("editing a pair", () => {
  beforeAll(async () => {
    await env.createPair(namespace, "edit", { tls: { certDuration: "24h" } });
    await env.condition(namespace, "edit", "CertificatesReady", "True");
  });

  it("scales the Deployments when replicas change, and with kubectl scale", async () => {
    await env.admin.mergePatch(resources.pingPongPair, namespace, "edit", {
      spec: { pinger: { replicas: 2 }, ponger: { replicas: 3 } },
    });
    await eventually("Deployments at 3 pongers and 2 pingers", async () => {
      const [ponger, pinger] = [await deployment("edit-ponger"), await deployment("edit-pinger")];
      return ponger?.spec?.replicas === 3 && pinger?.spec?.replicas === 2 ? true : undefined;
    });
    // The PodDisruptionBudget is applied after the Deployments, in the same reconcile: wait for it too.
    await eventually("the PDB at three pongers", async () =>
      (await env.admin.get(resources.podDisruptionBudget, namespace, "edit-ponger")) ? true : undefined,
    );

    await kubectl("scale", "pingpongpair", "edit", "--replicas=1");
    await eventually("the ponger Deployment at 1", async () =>
      (await deployment("edit-ponger"))?.spec?.replicas === 1 ? true : undefined,
    );
    await eventually("the PDB removed at one ponger", async () =>
      (await env.admin.get(resources.podDisruptionBudget, namespace, "edit-ponger")) === undefined
        ? true
        : undefined,
    );
    const scale = JSON.parse(
      await kubectl(
        "get",
        "--raw",
        `/apis/pingpong.dev/v1alpha1/namespaces/${namespace}/pingpongpairs/edit/scale`,
      ),
    ) as {
      spec: { replicas: number };
      status: { selector: string };
    };
    expect(scale.spec.replicas).toBe(1);
    expect(scale.status.selector).toContain("app.kubernetes.io/component=ponger");
  });

  it("re-issues both leaves, and not the CA, when tls.rotate changes", async () => {
    const before = {
      ca: await serial("edit-ca"),
      ponger: await serial("edit-ponger-tls"),
      pinger: await serial("edit-pinger-tls"),
    };
    await env.admin.mergePatch(resources.pingPongPair, namespace, "edit", {
      spec: { tls: { rotate: "2026-11-20" } },
    });
    await env.condition(namespace, "edit", "CertificatesReady", "True");
    const after = await eventually("new leaf serials", async () => {
      const now = {
        ca: await serial("edit-ca"),
        ponger: await serial("edit-ponger-tls"),
        pinger: await serial("edit-pinger-tls"),
      };
      return now.ponger !== before.ponger && now.pinger !== before.pinger ? now : undefined;
    });
    expect(after.ca).toBe(before.ca);
    // Events are recorded asynchronously, just after the Secrets are written.
    await eventually("an IssuedCertificate event naming the rotation", async () => {
      const events = await kubectl(
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=edit",
        "-o",
        "jsonpath={.items[*].message}",
      );
      return /issued the ponger certificate .*rotation requested \(rotate changed to "2026-11-20"\)/.test(
        events,
      )
        ? true
        : undefined;
    });
  });

  it("re-issues the leaves with the new key size and duration", async () => {
    await env.admin.mergePatch(resources.pingPongPair, namespace, "edit", {
      spec: { tls: { keySize: 3072, certDuration: "48h" } },
    });
    await eventually("3072-bit leaves valid for 48h", async () => {
      const info = inspectCertificate(secretText(await secret("edit-ponger-tls"), "tls.crt") ?? "");
      const hours = (info.notAfter.getTime() - info.notBefore.getTime()) / 3_600_000;
      return info.keySize === 3072 && Math.round(hours * 12) === 48 * 12 + 1 ? info : undefined;
    });
    const pinger = inspectCertificate(secretText(await secret("edit-pinger-tls"), "tls.crt") ?? "");
    expect(pinger.keySize).toBe(3072);
  });
});

describe("deleting a pair", () => {
  it("garbage-collects every child", async () => {
    await env.createPair(namespace, "gone");
    await env.condition(namespace, "gone", "CertificatesReady", "True");
    await env.admin.delete(resources.pingPongPair, namespace, "gone");
    await eventually(
      "every child of the pair to be deleted",
      async () => {
        const left = await Promise.all(
          [
            resources.secret,
            resources.configMap,
            resources.deployment,
            resources.service,
            resources.serviceAccount,
            resources.networkPolicy,
          ].map((type) => env.admin.list(type, namespace, "app.kubernetes.io/instance=gone")),
        );
        return left.every((l) => l.items.length === 0) ? true : undefined;
      },
      60_000,
    );
  });
});
