/**
 * Where the scheduler puts a pair's pods, for real: a control plane with kube-scheduler and Node
 * objects this test registers and keeps Ready (no kubelet behind them: pods are bound, never run).
 * Four plain nodes and one tainted, labelled pool node. Three of the plain nodes are nearly full (a
 * pod bound there requests 7 of their 8 CPUs), so the scheduler's own scoring prefers node-a: without
 * the pair's default placement its pinger lands next to a ponger there (tried: the first test fails
 * so). The pongers spread even then, by the scheduler's default spreading of a ReplicaSet's pods.
 */
import type { V1Node, V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../controlplane/testing.ts";
import type { PingPongPairSpec } from "./api/types.ts";
import { OperatorEnvironment } from "./testing/environment.ts";
import { resources } from "./runtime/resources.ts";

let env: OperatorEnvironment;
let namespace: string;
const plainNodes = ["node-a", "node-b", "node-c", "node-d"];
const poolNode = "node-pool";

async function registerNode(name: string, extra: Partial<V1Node["spec"]> = {}, labels = {}): Promise<void> {
  const capacity = { cpu: "8", memory: "16Gi", pods: "110" };
  await env.admin.create<V1Node>({
    apiVersion: "v1",
    kind: "Node",
    metadata: { name, labels: { "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", ...labels } },
    spec: { ...extra },
  });
  // Ready with room: what the scheduler reads. No node lifecycle controller runs here, so it stays so.
  await env.admin.apply<V1Node>(
    {
      apiVersion: "v1",
      kind: "Node",
      metadata: { name },
      status: {
        capacity,
        allocatable: capacity,
        conditions: [
          {
            type: "Ready",
            status: "True",
            reason: "KubeletReady",
            message: "registered by placement.test.ts",
            lastHeartbeatTime: new Date(),
            lastTransitionTime: new Date(),
          },
        ],
      },
    },
    "status",
  );
  // The API server taints a new Node not-ready; the node lifecycle controller (not run here) would
  // lift it once the node reports Ready. The test does it, keeping only the taints it asked for.
  await env.admin.mergePatch<V1Node>(resources.node, undefined, name, {
    spec: { taints: extra.taints ?? [] },
  });
}

beforeAll(async () => {
  env = await OperatorEnvironment.start({ scheduler: true });
  namespace = await env.namespace("placement");
  for (const name of plainNodes) await registerNode(name);
  await registerNode(
    poolNode,
    { taints: [{ key: "dedicated", value: "ping", effect: "NoSchedule" }] },
    { pool: "ping" },
  );
  // Most of node-b, node-c and node-d taken by a pod bound there directly (no scheduler involved).
  const fillers = await env.namespace("placement-fillers", false);
  for (const node of plainNodes.slice(1))
    await env.admin.create<V1Pod>({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: `filler-${node}`, namespace: fillers },
      spec: {
        nodeName: node,
        containers: [
          { name: "filler", image: "filler", resources: { requests: { cpu: "7", memory: "14Gi" } } },
        ],
      },
    });
  await env.startOperator();
});
afterAll(async () => {
  await OperatorEnvironment.stopIfStarted(env);
});

/** Where each of a pair's pods was bound, once all `count` are: component -> node names. */
async function placed(pair: string, count: number): Promise<{ ponger: string[]; pinger: string[] }> {
  const pods = await eventually(
    `${count} pods of ${pair} bound to nodes`,
    async () => {
      const list = await env.admin.list<V1Pod>(
        resources.pod,
        namespace,
        `app.kubernetes.io/instance=${pair}`,
      );
      const bound = list.items.filter((p) => p.spec?.nodeName && !p.metadata?.deletionTimestamp);
      return bound.length === count ? bound : undefined;
    },
    60_000,
  );
  const nodes = (component: string) =>
    pods
      .filter((p) => p.metadata?.labels?.["app.kubernetes.io/component"] === component)
      .map((p) => p.spec?.nodeName ?? "")
      .sort();
  return { ponger: nodes("ponger"), pinger: nodes("pinger") };
}

describe("a pair's pods on several nodes", () => {
  it("by default: three pongers on three nodes, the pinger on a fourth, none on the tainted pool", async () => {
    await env.createPair(namespace, "spread", { ponger: { replicas: 3 } });
    const where = await placed("spread", 4);
    console.log(`spread: pongers on ${where.ponger.join(", ")}; pinger on ${where.pinger.join(", ")}`);
    expect(new Set(where.ponger).size).toBe(3);
    expect(where.pinger).toHaveLength(1);
    expect(where.ponger).not.toContain(where.pinger[0]);
    expect([...where.ponger, ...where.pinger]).not.toContain(poolNode);
  });

  it("with a node selector and a toleration: the whole pair on the tainted pool", async () => {
    const pool: PingPongPairSpec["ponger"] = {
      nodeSelector: { pool: "ping" },
      tolerations: [{ key: "dedicated", operator: "Equal", value: "ping", effect: "NoSchedule" }],
    };
    await env.createPair(namespace, "pinned", { ponger: { ...pool, replicas: 2 }, pinger: pool });
    const where = await placed("pinned", 3);
    console.log(`pinned: pongers on ${where.ponger.join(", ")}; pinger on ${where.pinger.join(", ")}`);
    // The defaults only prefer: on a pool of one node, every pod still finds its place.
    expect(where).toEqual({ ponger: [poolNode, poolNode], pinger: [poolNode] });
  });

  it("refuses a placement field that PodSpec's schema refuses, naming it", async () => {
    await expect(
      env.createPair(namespace, "bad", {
        ponger: { tolerations: [{ key: "dedicated", tolerationSeconds: "soon" as unknown as number }] },
      }),
    ).rejects.toThrow(/spec.ponger.tolerations\[0\].tolerationSeconds/);
  });
});
