/**
 * The local node, for real: one cluster with its node for this file, pods of the project's own image
 * (built by `make image` from the Dockerfile), a ponger reached by its Service's DNS name, a Secret
 * update reaching a running pod, Pod Security "restricted", pods that cannot leave the machine, a
 * second cluster refused, and a machine left as it was found. Never sends anything to an address
 * outside this machine: isolation is proven with a listener here and by reading the rules.
 */
import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  type KubeConfig,
  type V1Container,
  type V1Pod,
  type V1PodSpec,
} from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installConfigDefault } from "./install.ts";
import { createCertificateAuthority, issueLeafCertificate } from "../lib/pki/mint.ts";
import { nodeImagesDir } from "./binaries.ts";
import type { ControlPlane } from "./control-plane.ts";
import { ControlPlane as Cluster } from "./control-plane.ts";
import { host, processesMentioning } from "./host.ts";
import { nodeName } from "./node-manifests.ts";
import { defaultNodeNetwork as network, ownerOfBridge } from "./node-network.ts";
import { NodeUnavailableError } from "./node-preflight.ts";
import { CliProcess, type LogLine } from "../workloads/testing/processes.ts";
import { expectNothingLeftSince, hostSnapshot, type HostSnapshot } from "./testing/host-snapshot.ts";
import { eventually, NodeTestLock, startTestControlPlane, testNamespace } from "./testing.ts";

const run = promisify(execFile);
const image = "pingpong-operator:dev";
const imageUid = 65532;

let lock: NodeTestLock;
let before: HostSnapshot;
let plane: ControlPlane;
let admin: KubeConfig;
let core: CoreV1Api;
let apps: AppsV1Api;
let namespace: string;
const started = Date.now();

beforeAll(async () => {
  if (!existsSync(join(nodeImagesDir(), "pingpong-operator.tar")))
    throw new Error(
      `the project's image is not built (${nodeImagesDir()}/pingpong-operator.tar): run \`make image\``,
    );
  lock = await NodeTestLock.acquire();
  before = await hostSnapshot();
  plane = await startTestControlPlane({ node: true, startTimeoutMs: 180_000 });
  admin = plane.adminClientConfig();
  core = admin.makeApiClient(CoreV1Api);
  apps = admin.makeApiClient(AppsV1Api);
}, 20 * 60_000);

afterAll(async () => {
  // Unset when beforeAll failed: its error is the one to see.
  await (plane as ControlPlane | undefined)?.stop();
  await (lock as NodeTestLock | undefined)?.release();
}, 120_000);

const kubectl = (...args: string[]) => plane.kubectl(...args);

/** A container meeting Pod Security "restricted" that runs as the image's user, read-only. */
function restrictedContainer(container: Omit<V1Container, "image" | "securityContext">): V1Container {
  return {
    image,
    imagePullPolicy: "Never",
    ...(container as Record<string, unknown>),
    name: container.name,
    securityContext: {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    },
  };
}

function deployment(name: string, spec: V1PodSpec) {
  const labels = { app: name };
  return {
    metadata: { name, labels },
    spec: { replicas: 1, selector: { matchLabels: labels }, template: { metadata: { labels }, spec } },
  };
}

async function podOf(app: string): Promise<V1Pod> {
  return eventually(`a running pod of ${app}`, async () => {
    const pods = await core.listNamespacedPod({ namespace, labelSelector: `app=${app}` });
    return pods.items.find(
      (p) => p.status?.phase === "Running" && p.metadata?.deletionTimestamp === undefined,
    );
  });
}

async function json<T>(url: string): Promise<T> {
  const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  return (await response.json()) as T;
}

/** The host pid of a pod's first container, from containerd. */
async function containerPid(pod: V1Pod): Promise<number> {
  const id = pod.status?.containerStatuses?.[0]?.containerID?.replace("containerd://", "");
  if (!id || !plane.node) throw new Error("the pod has no container id");
  const tasks = await plane.node.ctr("tasks", "list");
  const line = tasks.split("\n").find((l) => l.startsWith(id));
  const pid = Number(line?.split(/\s+/)[1]);
  if (!pid) throw new Error(`containerd runs no task ${id}:\n${tasks}`);
  return pid;
}

interface PongerStatus {
  tls: { certificate: { sha256Fingerprint: string } | null } | null;
}

interface PingerStatus {
  succeeded: number;
  failed: number;
  pongsByPod: Record<string, number>;
}

const secretData = (files: Record<string, string>) =>
  Object.fromEntries(Object.entries(files).map(([k, v]) => [k, Buffer.from(v).toString("base64")]));

describe("a local cluster with its node", () => {
  let ca: Awaited<ReturnType<typeof createCertificateAuthority>>;
  let pongerPod: V1Pod;

  const pongerName = () => `ponger.${namespace}.svc`;
  const leaf = () =>
    issueLeafCertificate(ca, {
      usage: "server",
      commonName: "ponger",
      dnsNames: [pongerName(), `${pongerName()}.cluster.local`],
      keySize: 2048,
      durationMs: 3_600_000,
    });

  it("has a Ready Node at its own address, and CoreDNS running", async () => {
    const node = await core.readNode({ name: nodeName });
    expect(node.status?.conditions?.find((c) => c.type === "Ready")?.status).toBe("True");
    expect(node.status?.addresses).toContainEqual({ type: "InternalIP", address: network.nodeIp });
    expect(node.spec?.podCIDR).toBe(network.podCidr);
    const dns = await apps.readNamespacedDeployment({ name: "coredns", namespace: "kube-system" });
    expect(dns.status?.availableReplicas).toBe(1);
    console.log(
      `cluster with node started and CoreDNS available in ${((Date.now() - started) / 1000).toFixed(1)}s`,
    );
  });

  it("runs the project's ponger from its image, Ready through its probes, in a restricted namespace", async () => {
    namespace = testNamespace("node");
    await core.createNamespace({
      body: {
        metadata: {
          name: namespace,
          labels: {
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
          },
        },
      },
    });
    ca = await createCertificateAuthority({
      commonName: "node-test-ca",
      keySize: 2048,
      durationMs: 86_400_000,
    });
    const serving = await leaf();
    await core.createNamespacedSecret({
      namespace,
      body: {
        metadata: { name: "ponger-tls" },
        type: "kubernetes.io/tls",
        data: secretData({ "tls.crt": serving.certificatePem, "tls.key": serving.privateKeyPem }),
      },
    });
    await core.createNamespacedSecret({
      namespace,
      body: { metadata: { name: "pinger-trust" }, data: secretData({ "ca.crt": ca.certificatePem }) },
    });
    const probes = {
      readinessProbe: { httpGet: { path: "/readyz", port: 9090 }, periodSeconds: 1 },
      livenessProbe: { httpGet: { path: "/healthz", port: 9090 }, periodSeconds: 5 },
    };
    const ponger = deployment("ponger", {
      containers: [
        restrictedContainer({
          name: "ponger",
          args: ["ponger"],
          env: [
            { name: "PINGPONG_SERVICE_TLS_CERTIFICATE", value: "/tls/tls.crt" },
            { name: "PINGPONG_SERVICE_TLS_PRIVATE_KEY", value: "/tls/tls.key" },
          ],
          ports: [{ containerPort: 8443 }, { containerPort: 9090 }],
          volumeMounts: [{ name: "tls", mountPath: "/tls", readOnly: true }],
          ...probes,
        }),
      ],
      volumes: [{ name: "tls", secret: { secretName: "ponger-tls" } }],
    });
    const pinger = deployment("pinger", {
      containers: [
        restrictedContainer({
          name: "pinger",
          args: ["pinger"],
          env: [
            // By the Service's DNS name, through CoreDNS and kube-proxy.
            { name: "PINGPONG_PONGER_URL", value: `https://${pongerName()}.cluster.local:8443/ping` },
            { name: "PINGPONG_PONGER_ACCEPT_CERT", value: "/trust/ca.crt" },
            { name: "PINGPONG_INTERVAL", value: "500ms" },
          ],
          ports: [{ containerPort: 9090 }],
          volumeMounts: [{ name: "trust", mountPath: "/trust", readOnly: true }],
          ...probes,
        }),
      ],
      volumes: [{ name: "trust", secret: { secretName: "pinger-trust" } }],
    });
    await apps.createNamespacedDeployment({ namespace, body: ponger });
    await apps.createNamespacedDeployment({ namespace, body: pinger });
    await core.createNamespacedService({
      namespace,
      body: {
        metadata: { name: "ponger" },
        spec: { selector: { app: "ponger" }, ports: [{ port: 8443, targetPort: 8443 }] },
      },
    });
    const available = await eventually(
      "the ponger Deployment to become available",
      async () => {
        const d = await apps.readNamespacedDeployment({ name: "ponger", namespace });
        return d.status?.availableReplicas === 1 ? d : undefined;
      },
      90_000,
    );
    expect(available.spec?.template.spec?.containers[0]?.readinessProbe?.httpGet?.path).toBe("/readyz");
    pongerPod = await podOf("ponger");
    expect(pongerPod.status?.conditions?.find((c) => c.type === "Ready")?.status).toBe("True");
    expect(pongerPod.status?.podIP).toMatch(/^10\.245\.0\./);

    // Run as the Dockerfile's user (the pod sets no runAsUser), with a read-only root filesystem.
    const pid = await containerPid(pongerPod);
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    expect(status).toMatch(new RegExp(`^Uid:\\s+${imageUid}\\s+${imageUid}\\s`, "m"));
    expect(status).toMatch(/^CapEff:\s+0+$/m);
    expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
    expect(status).toMatch(/^Seccomp:\s+2$/m);
    const rootMount = (await readFile(`/proc/${pid}/mountinfo`, "utf8"))
      .split("\n")
      .find((l) => l.split(" ")[4] === "/");
    expect(rootMount?.split(" ")[5]?.split(",")).toContain("ro");
  }, 150_000);

  it('refuses a pod that violates Pod Security "restricted" in that namespace', async () => {
    const refused = await core
      .createNamespacedPod({
        namespace,
        body: {
          metadata: { name: "root-pod" },
          spec: { containers: [{ name: "c", image, args: ["ponger"] }] },
        },
      })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ApiException);
    expect((refused as ApiException<unknown>).code).toBe(403);
    const { message } = JSON.parse(String((refused as ApiException<unknown>).body)) as { message: string };
    expect(message).toContain('violates PodSecurity "restricted:latest"');
    expect(message).toContain("runAsNonRoot != true");
  });

  it("lets the pinger pod reach the ponger by its Service's DNS name over TLS", async () => {
    const pinger = await podOf("pinger");
    const url = `http://${pinger.status?.podIP}:9090/status`;
    const status = await eventually(
      "pongs from the ponger",
      async () => {
        const s = await json<PingerStatus>(url);
        return s.succeeded >= 3 ? s : undefined;
      },
      60_000,
    );
    expect(Object.keys(status.pongsByPod)).toEqual([pongerPod.metadata?.name]);
    const pingerStatus = await readFile(`/proc/${await containerPid(pinger)}/status`, "utf8");
    expect(pingerStatus).toMatch(new RegExp(`^Uid:\\s+${imageUid}\\s+${imageUid}\\s`, "m"));
    // The kubelet serves logs through the API server.
    const logs = await kubectl("logs", "-n", namespace, `pod/${pinger.metadata?.name}`);
    expect(logs).toContain("Got pong");
  }, 90_000);

  it("delivers an updated Secret to the running pod's volume, which reloads it without a restart", async () => {
    const url = `http://${pongerPod.status?.podIP}:9090/status`;
    const first = await json<PongerStatus>(url);
    expect(first.tls?.certificate?.sha256Fingerprint).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    const next = await leaf();
    const nextFingerprint = new X509Certificate(next.certificatePem).fingerprint256;
    const updatedAt = Date.now();
    await core.replaceNamespacedSecret({
      name: "ponger-tls",
      namespace,
      body: {
        metadata: { name: "ponger-tls" },
        type: "kubernetes.io/tls",
        data: secretData({ "tls.crt": next.certificatePem, "tls.key": next.privateKeyPem }),
      },
    });
    const reloaded = await eventually(
      "the ponger to load the new certificate",
      async () => {
        const s = await json<PongerStatus>(url);
        return s.tls?.certificate?.sha256Fingerprint === nextFingerprint ? s : undefined;
      },
      90_000,
    );
    console.log(
      `Secret update reached the pod and was loaded in ${((Date.now() - updatedAt) / 1000).toFixed(1)}s`,
    );
    expect(reloaded.tls?.certificate?.sha256Fingerprint).not.toBe(first.tls?.certificate?.sha256Fingerprint);
    const pod = await core.readNamespacedPod({ name: pongerPod.metadata?.name ?? "", namespace });
    expect(pod.status?.containerStatuses?.[0]?.restartCount).toBe(0);
  }, 120_000);

  it("keeps pods on this machine: a host listener is unreachable from a pod, and the rules show no way out", async () => {
    const connections: string[] = [];
    const listener: Server = createServer((socket) => {
      connections.push(String(socket.remoteAddress));
      socket.destroy();
    });
    await new Promise<void>((resolve) => listener.listen(0, "0.0.0.0", resolve));
    const port = (listener.address() as { port: number }).port;
    try {
      // Every address of this machine: the node's, the pods' gateway, and the machine's own.
      const addresses = (
        JSON.parse(await host("ip", ["-j", "-4", "addr", "show"])) as {
          addr_info: { local: string }[];
        }[]
      )
        .flatMap((l) => l.addr_info.map((a) => a.local))
        .filter((a) => !a.startsWith("127."));
      expect(addresses).toContain(network.nodeIp);
      expect(addresses).toContain(network.gateway);
      const targets = [
        ...addresses.map((a) => ({ name: `host ${a}`, host: a, port })),
        // Controls: the same probe reaches what pods may reach.
        { name: "ponger Service", host: pongerName(), port: 8443 },
        { name: "API server Service", host: "kubernetes.default.svc", port: 443 },
      ];
      const script = `
const net = require("node:net");
const targets = ${JSON.stringify(targets)};
Promise.all(targets.map((t) => new Promise((resolve) => {
  const socket = net.connect({ host: t.host, port: t.port, timeout: 3000 });
  socket.once("connect", () => { socket.destroy(); resolve([t.name, "connected"]); });
  socket.once("timeout", () => { socket.destroy(); resolve([t.name, "timeout"]); });
  socket.once("error", (e) => resolve([t.name, e.code]));
}))).then((r) => console.log(JSON.stringify(Object.fromEntries(r))));`;
      await core.createNamespacedPod({
        namespace,
        body: {
          metadata: { name: "escape" },
          spec: {
            restartPolicy: "Never",
            containers: [
              restrictedContainer({ name: "escape", command: ["/nodejs/bin/node", "-e", script] }),
            ],
          },
        },
      });
      await eventually(
        "the escape pod to finish",
        async () => {
          const pod = await core.readNamespacedPod({ name: "escape", namespace });
          return pod.status?.phase === "Succeeded" ? true : undefined;
        },
        60_000,
      );
      const result = JSON.parse(await core.readNamespacedPodLog({ name: "escape", namespace })) as Record<
        string,
        string
      >;
      expect(result["ponger Service"]).toBe("connected");
      expect(result["API server Service"]).toBe("connected");
      for (const address of addresses) expect(result[`host ${address}`]).toBe("timeout");
      expect(connections).toEqual([]);
    } finally {
      await new Promise((resolve) => listener.close(resolve));
    }

    // The rules: our table drops what leaves the bridge; nothing masquerades; forwarding is on
    // for the bridge alone; the pods' only route out is the gateway on the bridge.
    const table = await host("nft", ["list", "table", "inet", network.table]);
    expect(table).toMatch(/iifname "pingpong0" counter packets \d+ bytes \d+ drop/);
    expect(table).toMatch(/oifname "pingpong0" counter packets \d+ bytes \d+ drop/);
    // kube-proxy masquerades Service traffic that would otherwise not come back the way it went
    // (hairpin, and callers outside the cluster range); nothing else translates addresses.
    const ruleset = JSON.parse(await host("nft", ["-j", "list", "ruleset"])) as {
      nftables: { rule?: { family: string; table: string; expr: Record<string, unknown>[] } }[];
    };
    const translating = ruleset.nftables
      .flatMap((i) => (i.rule ? [i.rule] : []))
      .filter((r) => r.expr.some((e) => "masquerade" in e || "snat" in e))
      .map((r) => `${r.family} ${r.table}`);
    expect(new Set(translating)).toEqual(new Set(["ip kube-proxy", "ip6 kube-proxy"]));
    expect(table).not.toMatch(/masquerade|snat|dnat/);
    expect((await readFile("/proc/sys/net/ipv4/ip_forward", "utf8")).trim()).toBe(
      before.sysctls["net/ipv4/ip_forward"],
    );
    expect((await readFile(`/proc/sys/net/ipv4/conf/${network.bridge}/forwarding`, "utf8")).trim()).toBe("1");
    const podNetns = (await host("ip", ["netns", "list"]))
      .split("\n")
      .map((l) => l.split(" ")[0] ?? "")
      .filter((n) => n.startsWith("cni-"));
    expect(podNetns.length).toBeGreaterThan(0);
    for (const netns of podNetns) {
      const routes = JSON.parse(await host("ip", ["-n", netns, "-j", "-4", "route"])) as {
        dst: string;
        gateway?: string;
      }[];
      expect(routes).toContainEqual(expect.objectContaining({ dst: "default", gateway: network.gateway }));
      expect(routes.filter((r) => r.dst !== "default").map((r) => r.dst)).toEqual([network.podCidr]);
    }
  }, 120_000);

  it("runs the operator from the image as the Dockerfile's user, installed from config/default", async () => {
    await installConfigDefault(kubectl);
    const pod = await eventually(
      "the operator's pod to be Ready",
      async () => {
        const pods = await core.listNamespacedPod({ namespace: "pingpong-system" });
        return pods.items.find((p) =>
          p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
        );
      },
      120_000,
    );
    const status = await readFile(`/proc/${await containerPid(pod)}/status`, "utf8");
    expect(status).toMatch(new RegExp(`^Uid:\\s+${imageUid}\\s`, "m"));
    // It reached the API server through the `kubernetes` Service and won the Lease.
    const logs = await kubectl("logs", "-n", "pingpong-system", `pod/${pod.metadata?.name}`);
    expect(logs).toMatch(/leader|Lease/i);
  }, 150_000);

  it("refuses a second cluster with a node and keeps the first running", async () => {
    const dir = await mkdtemp(join(tmpdir(), "second-cluster-"));
    try {
      const second = await Cluster.start({ dir, node: true }).catch((e: unknown) => e);
      expect(second).toBeInstanceOf(NodeUnavailableError);
      expect(String(second)).toMatch(/another pingpong cluster with a node is running \(pid \d+/);
      expect(String(second)).toContain("--no-node");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    expect(await ownerOfBridge(network)).toEqual({ pid: process.pid, dir: plane.dir });
    const node = await core.readNode({ name: nodeName });
    expect(node.status?.conditions?.find((c) => c.type === "Ready")?.status).toBe("True");
    expect(
      (await json<PingerStatus>(`http://${(await podOf("pinger")).status?.podIP}:9090/status`)).succeeded,
    ).toBeGreaterThan(0);
  }, 60_000);

  it("stops in order and leaves nothing of itself on the machine", async () => {
    const stopping = Date.now();
    await plane.stop();
    console.log(`cluster stopped and removed in ${((Date.now() - stopping) / 1000).toFixed(1)}s`);
    await expectNothingLeftSince(before, plane.dir, expect);
    expect(existsSync(plane.dir)).toBe(false);
  }, 120_000);
});

describe("pingpong cluster up", () => {
  it("starts the node and prints the KUBECONFIG line; after a SIGKILL the next start cleans up; SIGINT leaves nothing", async () => {
    const dir = await mkdtemp(join(tmpdir(), "cluster-up-node-"));
    const kubeconfig = join(dir, "kubeconfig");
    const nodeReady = async () => {
      const nodes = JSON.parse(
        await run(plane.binaries.kubectl, ["--kubeconfig", kubeconfig, "get", "nodes", "-o", "json"]).then(
          (r) => r.stdout,
        ),
      ) as {
        items: { status: { conditions: { type: string; status: string }[] } }[];
      };
      return (
        nodes.items[0]?.status.conditions.some((c) => c.type === "Ready" && c.status === "True") === true
      );
    };
    const exportLine = (l: LogLine) =>
      typeof l.msg === "string" && l.msg === `export KUBECONFIG=${kubeconfig}`;
    const first = new CliProcess(["cluster", "up", "--dir", dir]);
    let second: CliProcess | undefined;
    try {
      await first.waitForLog(exportLine, 180_000);
      expect(first.logs.map((l) => l.msg).join("\n")).toMatch(/cluster ready in [\d.]+s/);
      expect(await nodeReady()).toBe(true);

      // Killed outright: its components die with it (parent-death signal), but containerd's shims
      // and CoreDNS's processes outlive any parent, and the bridge and tables stay.
      await first.stop("SIGKILL");
      await eventually("the killed cluster's components to exit", async () =>
        (await processesMentioning(join(dir, "node", "kubelet"))).length === 0 ? true : undefined,
      );
      expect((await hostSnapshot()).shims).toBeGreaterThan(before.shims);
      expect(await ownerOfBridge(network)).toMatchObject({ dir });

      second = new CliProcess(["cluster", "up", "--dir", dir]);
      await second.waitForLog(
        (l) =>
          typeof l.msg === "string" &&
          l.msg.includes(`Removing what a stopped cluster (pid ${first.child.pid}) left`),
        60_000,
      );
      await second.waitForLog(exportLine, 180_000);
      expect(await nodeReady()).toBe(true);
      expect(await second.stop("SIGINT")).toBe(0);

      await expectNothingLeftSince(before, dir, expect);
      expect(existsSync(join(dir, "node"))).toBe(false);
    } finally {
      await first.stop("SIGKILL");
      await second?.stop("SIGKILL");
      await rm(dir, { recursive: true, force: true });
    }
  }, 420_000);
});
