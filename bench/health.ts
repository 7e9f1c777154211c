/**
 * Health-reading benchmark: BENCH_HEALTH_PAIRS pairs (default 1000), each with a running pinger and
 * ponger Pod, and the operator (its own process from dist/, as its ServiceAccount, the shipped
 * NODE_OPTIONS, --health-interval 10s) reading every pod's /status. No pod can run without a node,
 * so every Pod object points at ONE loopback stand-in that answers /status as a healthy pinger
 * would (a few pings more or less each time, latencies that wobble): the operator does the real
 * reads, aggregation and writes. Reported: operator CPU and API writes per minute once healthy.
 */
import { createServer } from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import { ControlPlane } from "../controlplane/control-plane.ts";
import type { PingPongPair } from "../operator/api/types.ts";
import { installOperator } from "../controlplane/install.ts";
import { labels } from "../operator/pingpongpair/names.ts";
import { connectionFromKubeconfig } from "../operator/runtime/cluster-connection.ts";
import { KubeClient } from "../operator/runtime/kube-client.ts";
import { resources } from "../operator/runtime/resources.ts";
import type { CliProcess } from "../workloads/testing/processes.ts";
import { metricValue } from "../workloads/testing/tls-client.ts";
import { metrics, startOperatorProcess, sum, writesPattern } from "./operator.ts";
import { report } from "./report.ts";

const namespace = "bench-health";

/** One stand-in for every pod: a healthy pinger's /status, with realistic noise. */
async function standInStatusServer(): Promise<{
  port: number;
  requests: () => number;
  close(): Promise<void>;
}> {
  let requests = 0;
  let pongs = 0;
  const server = createServer((request, response) => {
    requests++;
    pongs += 10;
    const sent = 59 + Math.floor(Math.random() * 3);
    response.setHeader("content-type", "application/json");
    response.end(
      JSON.stringify({
        sent: pongs,
        succeeded: pongs,
        failed: 0,
        lastPongTime: new Date(Date.now() - Math.random() * 1000).toISOString(),
        window: {
          windowSeconds: 60,
          sent,
          succeeded: sent,
          failed: 0,
          successRatio: 1,
          latencyP50Ms: 0.8 + Math.random() * 0.3,
          latencyP99Ms: 2 + Math.random() * 1.5,
          failuresByReason: {},
        },
        pongsByPod: { "stand-in-ponger": pongs },
        failuresByReason: {},
        lastFailure: null,
        tls: { certificate: { sha256Fingerprint: "stand-in" }, trustBundle: [] },
        // request.url is ignored: every pod answers alike
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return { port, requests: () => requests, close: () => new Promise((r) => server.close(() => r())) };
}

async function inBatches<T>(
  items: readonly T[],
  size: number,
  work: (item: T) => Promise<unknown>,
): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(work));
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const started = performance.now();
  while (!(await check())) {
    if (performance.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2_000));
  }
  return performance.now() - started;
}

export async function benchHealth(): Promise<void> {
  const pairs = Number(process.env.BENCH_HEALTH_PAIRS ?? 1000);
  console.log(`\n# Health reading (${pairs} pairs, 2 pods each, --health-interval 10s; pods are Pod objects`);
  console.log("  pointing at one loopback stand-in /status server: no node runs pods in this benchmark)");
  const plane = await ControlPlane.start({ controllerManager: false });
  const dir = await mkdtemp(join(tmpdir(), "bench-health-"));
  const statusServer = await standInStatusServer();
  let operator: CliProcess | undefined;
  try {
    const admin = new KubeClient(await connectionFromKubeconfig(plane.adminKubeconfig()));
    await installOperator(admin, "pingpong-system");
    await admin.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } });
    // No controller manager: create the ServiceAccount pods are admitted with.
    await admin.create({
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: "default", namespace },
    });
    const started = await startOperatorProcess(plane, dir, [
      "--leader-elect",
      "false",
      "--health-interval",
      "10s",
    ]);
    operator = started.process;
    const url = started.url;

    const names = Array.from({ length: pairs }, (_, i) => `h${i}`);
    await inBatches(names, 50, (name) =>
      admin.create<PingPongPair>({
        apiVersion: "pingpong.dev/v1alpha1",
        kind: "PingPongPair",
        metadata: { name, namespace },
        spec: {},
      }),
    );
    const allPairs = async () => (await admin.list<PingPongPair>(resources.pingPongPair, namespace)).items;
    const condition = (p: PingPongPair, type: string) =>
      p.status?.conditions?.find((c) => c.type === type)?.status;
    const certified = await waitFor(
      "every pair's certificates",
      async () =>
        (await allPairs()).filter((p) => condition(p, "CertificatesReady") === "True").length === pairs,
      600_000,
    );
    report(`${pairs} pairs created and certified`, certified / 1000, "s");

    const created = await allPairs();
    const pods = created.flatMap((pair) =>
      (["ponger", "pinger"] as const).map((component) => ({ pair, component })),
    );
    await inBatches(pods, 50, async ({ pair, component }) => {
      const name = `${pair.metadata?.name ?? ""}-${component}-0`;
      await admin.create<V1Pod>({
        apiVersion: "v1",
        kind: "Pod",
        metadata: {
          name,
          namespace,
          labels: labels(pair.metadata?.name ?? "", component),
          ownerReferences: [
            {
              apiVersion: "pingpong.dev/v1alpha1",
              kind: "PingPongPair",
              name: pair.metadata?.name ?? "",
              uid: pair.metadata?.uid ?? "",
              controller: true,
            },
          ],
        },
        spec: {
          containers: [
            {
              name: component,
              image: "stand-in",
              ports: [{ name: "metrics", containerPort: statusServer.port }],
            },
          ],
        },
      });
      await admin.apply(
        {
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name, namespace },
          status: { phase: "Running", podIP: "127.0.0.1" },
        },
        "status",
      );
    });
    const healthy = await waitFor(
      "every pair's PingHealthy",
      async () => (await allPairs()).filter((p) => condition(p, "PingHealthy") === "True").length === pairs,
      600_000,
    );
    report(`every pair PingHealthy=True after its pods appeared`, healthy / 1000, "s");

    // Settle, then one minute of steady health reading.
    await new Promise((r) => setTimeout(r, 30_000));
    const before = await metrics(url);
    const readsBefore = statusServer.requests();
    await new Promise((r) => setTimeout(r, 60_000));
    const after = await metrics(url);
    const cpu = (text: string) => metricValue(text, "process_cpu_seconds_total") ?? 0;
    report(
      "/status reads per minute",
      statusServer.requests() - readsBefore,
      "/min",
      `(${2 * pairs} pods every ~10 s)`,
    );
    report("operator CPU while reading health", ((cpu(after) - cpu(before)) / 60) * 100, "% of a core");
    const reconciles = /^pingpong_operator_reconcile_total\{[^}]*\} (\d+)/gm;
    report(
      "reconciles per minute",
      sum(after, reconciles) - sum(before, reconciles),
      "/min",
      `(${pairs} pairs)`,
    );
    const statusWrites =
      /^pingpong_operator_api_requests_total\{verb="(?:apply|patch)",resource="pingpongpairs"[^}]*\} (\d+)/gm;
    report(
      "API writes per minute (all but the Lease)",
      sum(after, writesPattern()) - sum(before, writesPattern()),
      "/min",
    );
    report(
      "  of which pair status writes",
      sum(after, statusWrites) - sum(before, statusWrites),
      "/min",
      `(${pairs} pairs)`,
    );
    report("operator RSS", (metricValue(after, "process_resident_memory_bytes") ?? 0) / 2 ** 20, "MiB");
  } finally {
    await operator?.stop();
    await statusServer.close();
    await plane.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
