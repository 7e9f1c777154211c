import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, symlink, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  type KubeConfig,
  RbacAuthorizationV1Api,
} from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CliProcess } from "../workloads/testing/processes.ts";
import { binaryCacheDir, findBinaries, MissingBinaryError, pinnedKubernetesVersion } from "./binaries.ts";
import type { ControlPlane } from "./control-plane.ts";
import { eventually, startTestControlPlane, testNamespace } from "./testing.ts";

const run = promisify(execFile);
let plane: ControlPlane;
let admin: KubeConfig;

beforeAll(async () => {
  plane = await startTestControlPlane();
  admin = plane.adminClientConfig();
});
afterAll(async () => {
  await plane.stop();
});

async function kubectl(kubeconfig: string, ...args: string[]): Promise<string> {
  const { stdout } = await run(plane.binaries.kubectl, ["--kubeconfig", kubeconfig, ...args]);
  return stdout;
}

async function createNamespace(prefix: string): Promise<string> {
  const name = testNamespace(prefix);
  await admin.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name } } });
  return name;
}

function statusOf(error: unknown): number | undefined {
  return error instanceof ApiException ? error.code : undefined;
}

describe("the local control plane", () => {
  it("is ready, as kubectl sees it, at the pinned version", async () => {
    expect(await kubectl(plane.kubeconfigPath, "get", "--raw", "/readyz")).toBe("ok");
    const version = JSON.parse(await kubectl(plane.kubeconfigPath, "version", "-o", "json")) as {
      serverVersion: { gitVersion: string };
    };
    expect(version.serverVersion.gitVersion).toBe(pinnedKubernetesVersion());
  });

  it("authorizes ServiceAccounts by RBAC: denied without a Role, allowed with one", async () => {
    const namespace = await createNamespace("rbac");
    const core = admin.makeApiClient(CoreV1Api);
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: "robot" } } });
    const robot = (await plane.serviceAccountKubeConfig(namespace, "robot")).makeApiClient(CoreV1Api);
    const secret = { metadata: { name: "made-by-robot" }, stringData: { a: "b" } };

    const denied = await robot.createNamespacedSecret({ namespace, body: secret }).catch((e: unknown) => e);
    expect(statusOf(denied)).toBe(403);
    expect(String((denied as ApiException<unknown>).body)).toContain(
      `system:serviceaccount:${namespace}:robot`,
    );

    const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace,
      body: {
        metadata: { name: "secret-writer" },
        rules: [{ apiGroups: [""], resources: ["secrets"], verbs: ["create"] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: "robot-writes-secrets" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "secret-writer" },
        subjects: [{ kind: "ServiceAccount", name: "robot", namespace }],
      },
    });
    const created = await eventually("the Role to take effect", async () =>
      robot.createNamespacedSecret({ namespace, body: secret }),
    );
    expect(created.metadata?.name).toBe("made-by-robot");
    // Still only what the Role grants.
    expect(
      statusOf(
        await robot.readNamespacedSecret({ namespace, name: "made-by-robot" }).catch((e: unknown) => e),
      ),
    ).toBe(403);
  });

  it("turns a Deployment into a ReplicaSet and Pending Pods, and collects them when it is deleted", async () => {
    const namespace = await createNamespace("deploy");
    const apps = admin.makeApiClient(AppsV1Api);
    const core = admin.makeApiClient(CoreV1Api);
    await apps.createNamespacedDeployment({
      namespace,
      body: {
        metadata: { name: "web" },
        spec: {
          replicas: 2,
          selector: { matchLabels: { app: "web" } },
          template: {
            metadata: { labels: { app: "web" } },
            spec: { containers: [{ name: "web", image: "registry.invalid/web:1" }] },
          },
        },
      },
    });
    const pods = await eventually("two Pods", async () => {
      const list = await core.listNamespacedPod({ namespace, labelSelector: "app=web" });
      return list.items.length === 2 ? list.items : undefined;
    });
    expect(pods.every((p) => p.status?.phase === "Pending")).toBe(true);
    const replicaSets = await apps.listNamespacedReplicaSet({ namespace, labelSelector: "app=web" });
    expect(replicaSets.items).toHaveLength(1);
    expect(replicaSets.items[0]?.metadata?.ownerReferences?.[0]).toMatchObject({
      kind: "Deployment",
      name: "web",
    });

    await apps.deleteNamespacedDeployment({ namespace, name: "web" });
    await eventually("the garbage collector to delete the ReplicaSet and Pods", async () => {
      const [rs, left] = await Promise.all([
        apps.listNamespacedReplicaSet({ namespace, labelSelector: "app=web" }),
        core.listNamespacedPod({ namespace, labelSelector: "app=web" }),
      ]);
      return rs.items.length === 0 && left.items.length === 0 ? true : undefined;
    });
  });

  it("finishes deleting namespaces", async () => {
    const namespace = await createNamespace("gone");
    const core = admin.makeApiClient(CoreV1Api);
    await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: "x" } } });
    await core.deleteNamespace({ name: namespace });
    await eventually("the namespace to disappear", async () =>
      core.readNamespace({ name: namespace }).then(
        () => undefined,
        (e: unknown) => (statusOf(e) === 404 ? true : undefined),
      ),
    );
  });
});

describe("pingpong cluster up", () => {
  it("prints the kubeconfig to export, serves kubectl, and cleans up on SIGINT", async () => {
    const dir = await mkdtemp(join(tmpdir(), "cluster-up-"));
    const cluster = new CliProcess(["cluster", "up", "--no-node", "--dir", dir]);
    try {
      const exportLine = await cluster.waitForLog(
        (l) => typeof l.msg === "string" && l.msg.startsWith("export KUBECONFIG="),
        90_000,
      );
      const kubeconfig = String(exportLine.msg).slice("export KUBECONFIG=".length);
      expect(kubeconfig).toBe(join(dir, "kubeconfig"));
      expect(await kubectl(kubeconfig, "get", "--raw", "/readyz")).toBe("ok");
      expect(await cluster.stop("SIGINT")).toBe(0);
      expect(existsSync(kubeconfig)).toBe(false);
      expect(existsSync(join(dir, "pki"))).toBe(false);
      await expect(kubectl(kubeconfig, "get", "--raw", "/readyz")).rejects.toThrow();
    } finally {
      await cluster.stop("SIGKILL");
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("finding binaries", () => {
  it("says exactly how to get them when they are missing", () => {
    const attempt = () => findBinaries({ PATH: "", PINGPONG_CACHE_DIR: "/nonexistent" });
    expect(attempt).toThrow(MissingBinaryError);
    expect(attempt).toThrow(/etcd, kube-apiserver, kube-controller-manager, kubectl/);
    expect(attempt).toThrow(/make controlplane/);
    expect(attempt).toThrow(/KUBEBUILDER_ASSETS/);
  });

  it("honours the envtest conventions before its own cache", async () => {
    const assets = await mkdtemp(join(tmpdir(), "assets-"));
    const own = findBinaries();
    await symlink(own.etcd, join(assets, "etcd"));
    await symlink(own.kubeApiserver, join(assets, "kube-apiserver"));
    await mkdir(join(assets, "elsewhere"));
    await symlink(own.kubectl, join(assets, "elsewhere", "my-kubectl"));
    const found = findBinaries({
      // Where the cache is stays as it is; only the envtest variables are under test.
      PINGPONG_CACHE_DIR: process.env.PINGPONG_CACHE_DIR,
      XDG_CACHE_HOME: process.env.XDG_CACHE_HOME,
      PATH: "",
      KUBEBUILDER_ASSETS: assets,
      TEST_ASSET_KUBECTL: join(assets, "elsewhere", "my-kubectl"),
    });
    expect(found.etcd).toBe(join(assets, "etcd"));
    expect(found.kubeApiserver).toBe(join(assets, "kube-apiserver"));
    expect(found.kubectl).toBe(join(assets, "elsewhere", "my-kubectl"));
    expect(found.kubeControllerManager).toBe(join(binaryCacheDir(), "kube-controller-manager"));
    await rm(assets, { recursive: true, force: true });
  });
});
