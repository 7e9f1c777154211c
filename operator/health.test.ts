/**
 * Ping health against the real API server: the operator (as its ServiceAccount) reads real pinger
 * processes' /status through Pod objects that point at them, and reports PingHealthy, status.ping
 * and the SUCCESS and P99 columns; a ponger that stops makes it False, with what failed and how
 * often; pods it cannot reach make it Unknown. Events on transitions only; status writes bounded.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { CoreV1Event, V1Pod } from "@kubernetes/client-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../controlplane/testing.ts";
import { metricValue } from "../workloads/testing/tls-client.ts";
import type { PingPongPair } from "./api/types.ts";
import type { RunningOperator } from "./operator.ts";
import { OperatorEnvironment } from "./testing/environment.ts";
import { StandIns } from "./testing/stand-ins.ts";
import { labels, ownerReference } from "./pingpongpair/names.ts";
import { resources } from "./runtime/resources.ts";

const run = promisify(execFile);
const healthIntervalMs = 1_000;
let env: OperatorEnvironment;
let namespace: string;
let operator: RunningOperator;
const standIns: StandIns[] = [];

beforeAll(async () => {
  env = await OperatorEnvironment.start();
  namespace = await env.namespace("health", false);
  operator = await env.startOperator({ healthIntervalMs });
});
afterEach(async () => {
  await Promise.all(standIns.splice(0).map((s) => s.stop()));
});
afterAll(async () => {
  await OperatorEnvironment.stopIfStarted(env);
});

async function pairWithPods(name: string, pingers = 1): Promise<{ pair: PingPongPair; pods: StandIns }> {
  await env.createPair(namespace, name, { pinger: { interval: "100ms" } });
  await env.condition(namespace, name, "CertificatesReady", "True");
  const pair = (await env.pair(namespace, name)) as PingPongPair;
  const pods = await StandIns.start(env.admin, pair, { pingers, intervalMs: 100 });
  standIns.push(pods);
  return { pair, pods };
}

async function events(name: string): Promise<CoreV1Event[]> {
  const list = await env.admin.list<CoreV1Event>(resources.event, namespace);
  return list.items.filter((e) => e.involvedObject.name === name);
}

describe("ping health in the pair's status", () => {
  it("is True with SUCCESS and P99 filled in once the pingers' pongs are read, with one Event", async () => {
    const { pods } = await pairWithPods("healthy", 2);
    await env.condition(namespace, "healthy", "PingHealthy", "True", "Healthy");
    // The stand-in pods appear one after the other: wait until both pingers have been read.
    const pair = await eventually("both pingers in status.ping", async () => {
      const p = await env.pair(namespace, "healthy");
      return p?.status?.ping?.pingers === 2 ? p : undefined;
    });
    const ping = pair.status?.ping;
    expect(ping?.success).toBe("100%");
    expect(ping?.latencyP99).toMatch(/^[\d.]+ms$/);
    expect(ping?.sent).toBeGreaterThan(0);
    expect(ping?.failed).toBe(0);
    expect(ping?.pingers).toBe(2);
    expect(Object.keys(ping?.pongsByPod ?? {})).toEqual([pods.podNames[0]]);
    expect(ping?.worstPinger?.pod).toMatch(/^healthy-pinger-standin-[01]$/);
    expect(Date.now() - Date.parse(ping?.lastPongTime ?? "")).toBeLessThan(10_000);
    expect(pair.status?.conditions?.find((c) => c.type === "PingHealthy")?.message).toBe(
      "pings succeed at or above 95% in the last minute",
    );
    // No kubelet: the Deployments are never available, so Ready waits on them, not on health.
    expect(pair.status?.conditions?.find((c) => c.type === "Ready")?.reason).toBe("WorkloadsUnavailable");

    const { stdout } = await run(env.plane.binaries.kubectl, [
      "--kubeconfig",
      env.plane.kubeconfigPath,
      "get",
      "pingpongpairs",
      "-n",
      namespace,
      "healthy",
    ]);
    const [header, row] = stdout.trim().split("\n");
    const columns = (header ?? "").split(/\s{2,}/);
    const cells = (row ?? "").split(/\s{2,}/);
    expect(cells[columns.indexOf("SUCCESS")]).toBe("100%");
    expect(cells[columns.indexOf("P99")]).toBe(ping?.latencyP99);

    const healthy = await eventually("the PingHealthy event", async () => {
      const found = (await events("healthy")).filter((e) => e.reason === "Healthy");
      return found.length > 0 ? found : undefined;
    });
    expect(healthy[0]?.message).toBe("ping health is True: pings succeed at or above 95% in the last minute");

    // Steady and healthy: both pingers are read every second, but status is not rewritten for
    // each read (noise is not written), and no further Event is recorded. Steady means each
    // pinger's one-minute window is full (a ping has left it): while it fills, status follows it.
    const statusUrls = await Promise.all(
      pods.pingers.map(async (p) => `${await p.logged("Metrics and probes listening", "url")}/status`),
    );
    await eventually(
      "both pingers' windows full",
      async () => {
        for (const url of statusUrls) {
          const status = (await (await fetch(url)).json()) as { sent: number; window: { sent: number } };
          if (status.sent <= status.window.sent) return undefined;
        }
        return true;
      },
      90_000,
    );
    const writesBefore = await operator.client.writeCount();
    const reads = async () =>
      metricValue(
        await (await fetch(`${operator.probes.url}/metrics`)).text(),
        'pingpong_operator_pod_status_reads_total{component="pinger",result="ok"}',
      ) ?? 0;
    const readsBefore = await reads();
    // Six more reads of each pinger, however long the reader takes.
    await eventually("six more reads of both pingers", async () =>
      (await reads()) >= readsBefore + 12 ? true : undefined,
    );
    expect((await operator.client.writeCount()) - writesBefore).toBeLessThan(6);
    expect((await events("healthy")).filter((e) => e.reason === "Healthy")).toHaveLength(1);
    expect((await env.pair(namespace, "healthy"))?.status?.ping?.success).toBe("100%");
  }, 150_000);

  it("is False, saying what failed and how often, when the ponger stops; a Warning Event; Ready says why", async () => {
    const { pods } = await pairWithPods("failing");
    await env.condition(namespace, "failing", "PingHealthy", "True");
    await pods.ponger.stop();
    const pair = await env.condition(namespace, "failing", "PingHealthy", "False", "PingsFailing", 30_000);
    const condition = pair.status?.conditions?.find((c) => c.type === "PingHealthy");
    expect(condition?.message).toMatch(
      /^\d+ of \d+ pings failed in the last minute: connection \(\d+\) \(threshold 95% success\); last: /,
    );
    expect(pair.status?.ping?.failuresByReason?.connection).toBeGreaterThan(0);
    expect(Number(pair.status?.ping?.success?.replace("%", ""))).toBeLessThan(95);
    const warning = await eventually("a PingsFailing Warning event", async () =>
      (await events("failing")).find((e) => e.reason === "PingsFailing" && e.type === "Warning"),
    );
    expect(warning.message).toMatch(/^ping health is False: \d+ of \d+ pings failed/);
  });

  it("is Unknown with a reason when the pinger pods cannot be read", async () => {
    await env.createPair(namespace, "unreachable");
    await env.condition(namespace, "unreachable", "CertificatesReady", "True");
    const pair = (await env.pair(namespace, "unreachable")) as PingPongPair;
    // A pinger pod whose metrics port nothing listens on (port 9 on loopback: discard, closed here).
    await env.admin.create<V1Pod>({
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name: "unreachable-pinger-x",
        namespace,
        labels: labels("unreachable", "pinger"),
        ownerReferences: [ownerReference(pair)],
      },
      spec: {
        containers: [{ name: "pinger", image: "stand-in", ports: [{ name: "metrics", containerPort: 9 }] }],
      },
    });
    await env.admin.apply(
      {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "unreachable-pinger-x", namespace },
        status: { phase: "Running", podIP: "127.0.0.1" },
      },
      "status",
    );
    const unknown = await env.condition(
      namespace,
      "unreachable",
      "PingHealthy",
      "Unknown",
      "PingersUnreachable",
    );
    expect(unknown.status?.conditions?.find((c) => c.type === "PingHealthy")?.message).toMatch(
      /^cannot read \/status of 1 of 1 pinger pod\(s\) \(unreachable-pinger-x: .*ECONNREFUSED.*\); the operator must reach pod IPs/,
    );
  });
});
