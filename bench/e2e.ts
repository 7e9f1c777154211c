/**
 * End-to-end benchmark on the real node: a cluster with its node, config/default installed (the
 * operator as a pod of the image from the Dockerfile; --ca-rotation-step 20s instead of the shipped
 * 2m so that a CA rotation fits, everything else as shipped). Measures apply -> Ready (PingHealthy
 * True) for 10 pairs one at a time and 10 at once (next to the first ten), with the timeline of the
 * phases in between (bench/timeline.ts); leaf and CA rotation of a pair pinging 10 times a
 * second (failed pings, time to complete); memory of one pair's pods and of the operator's pod.
 */
import { readFile } from "node:fs/promises";
import type { V1Pod } from "@kubernetes/client-node";
import { ControlPlane } from "../controlplane/control-plane.ts";
import type { PingPongPair } from "../operator/api/types.ts";
import { installConfigDefault } from "../controlplane/install.ts";
import { connectionFromKubeconfig } from "../operator/runtime/cluster-connection.ts";
import { KubeClient } from "../operator/runtime/kube-client.ts";
import { resources } from "../operator/runtime/resources.ts";
import { report, summarize } from "./report.ts";
import { Timeline } from "./timeline.ts";

const namespace = "bench-e2e";

export async function benchEndToEnd(): Promise<void> {
  console.log(
    "\n# End to end on the real node (operator as a pod from config/default, --ca-rotation-step 20s)",
  );
  const plane = await ControlPlane.start({ node: true });
  const admin = new KubeClient(await connectionFromKubeconfig(plane.adminKubeconfig()));
  const kubectl = (...args: string[]) => plane.kubectl(...args);
  try {
    await installConfigDefault(kubectl, ["--ca-rotation-step=20s"]);
    await kubectl("create", "namespace", namespace);

    const pair = (name: string) => admin.get<PingPongPair>(resources.pingPongPair, namespace, name);
    const holds = async (name: string, check: (p: PingPongPair) => boolean, timeoutMs = 300_000) => {
      const started = performance.now();
      for (;;) {
        const p = await pair(name);
        if (p && p.status?.observedGeneration === p.metadata?.generation && check(p))
          return performance.now() - started;
        if (performance.now() - started > timeoutMs) throw new Error(`${name}: timed out`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    const ready = (p: PingPongPair) =>
      p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true;
    const create = (name: string, interval = "1s") =>
      admin.create<PingPongPair>({
        apiVersion: "pingpong.dev/v1alpha1",
        kind: "PingPongPair",
        metadata: { name, namespace },
        spec: { pinger: { interval } },
      });

    const timeline = new Timeline(admin, namespace);
    const oneByOne: number[] = [];
    for (let i = 0; i < 10; i++) {
      const started = performance.now();
      timeline.applied(`one-${i}`);
      await create(`one-${i}`);
      await holds(`one-${i}`, ready);
      oneByOne.push(performance.now() - started);
    }
    const { p50, p99 } = summarize(oneByOne);
    report(
      "apply -> Ready (PingHealthy True), one at a time",
      p50 / 1000,
      "s p50",
      `p99 ${(p99 / 1000).toFixed(1)} s over 10`,
    );
    const burstStart = performance.now();
    await Promise.all(
      Array.from({ length: 10 }, (_, i) => {
        timeline.applied(`burst-${i}`);
        return create(`burst-${i}`);
      }),
    );
    await Promise.all(Array.from({ length: 10 }, (_, i) => holds(`burst-${i}`, ready)));
    report(
      "apply 10 at once (next to 10 running) -> all Ready",
      (performance.now() - burstStart) / 1000,
      "s",
    );
    await timeline.stop();
    const names = (prefix: string) => Array.from({ length: 10 }, (_, i) => `${prefix}-${i}`);
    timeline.print("one at a time", names("one"));
    timeline.print("ten at once", names("burst"));
    await kubectl("-n", namespace, "delete", "ppp", "--all", "--wait=false");

    // One pair pinging 10 times a second, rotated twice.
    await create("rotating", "100ms");
    await holds("rotating", ready);
    const pingers = async () =>
      (
        await admin.list<V1Pod>(
          resources.pod,
          namespace,
          "app.kubernetes.io/instance=rotating,app.kubernetes.io/component=pinger",
        )
      ).items.filter((p) => p.status?.phase === "Running");
    const totals = async () => {
      let sent = 0;
      let failed = 0;
      for (const pod of await pingers()) {
        const status = (await (await fetch(`http://${pod.status?.podIP}:9090/status`)).json()) as {
          sent: number;
          failed: number;
        };
        sent += status.sent;
        failed += status.failed;
      }
      return { sent, failed };
    };
    const certificatesIssued = (p: PingPongPair) =>
      p.status?.conditions?.some((c) => c.type === "CertificatesReady" && c.reason === "Issued") === true;
    for (const [what, field] of [
      ["leaf rotation (tls.rotate)", "rotate"],
      ["CA rotation (tls.rotateCA), 3 steps", "rotateCA"],
    ] as const) {
      const before = await totals();
      const serial = (await pair("rotating"))?.status?.certificates?.ponger?.serial;
      const started = performance.now();
      await kubectl(
        "-n",
        namespace,
        "patch",
        "ppp",
        "rotating",
        "--type",
        "merge",
        "-p",
        JSON.stringify({ spec: { tls: { [field]: "bench" } } }),
      );
      await holds(
        "rotating",
        (p) => p.status?.certificates?.ponger?.serial !== serial && certificatesIssued(p),
        600_000,
      );
      const took = performance.now() - started;
      const after = await totals();
      report(`${what} at 10 pings/s: time until every pod loaded it`, took / 1000, "s");
      report(
        `${what}: failed pings`,
        after.failed - before.failed,
        "",
        `of ${after.sent - before.sent} sent (target 0)`,
      );
    }

    // Memory: the pair's two containers, and the operator's.
    const rss = async (pod: V1Pod) => {
      const id = pod.status?.containerStatuses?.[0]?.containerID?.replace("containerd://", "") ?? "";
      const line = (await plane.node?.ctr("tasks", "list"))?.split("\n").find((l) => l.startsWith(id));
      const pid = line?.split(/\s+/)[1];
      const status = await readFile(`/proc/${pid}/status`, "utf8");
      return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) / 1024;
    };
    const pairPods = (
      await admin.list<V1Pod>(resources.pod, namespace, "app.kubernetes.io/instance=rotating")
    ).items;
    for (const pod of pairPods)
      report(
        `RSS of the pair's ${pod.metadata?.labels?.["app.kubernetes.io/component"] ?? "?"} pod (10 pings/s)`,
        await rss(pod),
        "MiB",
      );
    const [operatorPod] = (await admin.list<V1Pod>(resources.pod, "pingpong-system")).items;
    if (operatorPod) report("RSS of the operator's pod", await rss(operatorPod), "MiB");
  } finally {
    await admin.close();
    await plane.stop();
  }
}
