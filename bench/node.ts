/**
 * Local node benchmark (binaries and images already built and cached): time from `start` to each
 * milestone (API server, Node Ready, CoreDNS Ready, a ponger of the project's image Ready), memory
 * of the whole cluster at idle (every component, containerd's shims and the pods' processes), and
 * the time to stop and remove it from the machine.
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { AppsV1Api } from "@kubernetes/client-node";
import { ControlPlane } from "../controlplane/control-plane.ts";
import { processesMentioning } from "../controlplane/host.ts";
import { report, summarize } from "./report.ts";

async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) / 1024;
}

/** Every process in the kubelet's pod cgroups (memory hierarchy). */
async function podPids(dir = "/sys/fs/cgroup/memory/kubepods"): Promise<number[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const own = (await readFile(join(dir, "cgroup.procs"), "utf8").catch(() => ""))
    .split("\n")
    .filter(Boolean)
    .map(Number);
  const below = await Promise.all(
    entries.filter((e) => e.isDirectory()).map((e) => podPids(join(dir, e.name))),
  );
  return [...own, ...below.flat()];
}

async function startTimed(): Promise<{ plane: ControlPlane; milestones: Map<string, number> }> {
  const started = performance.now();
  const milestones = new Map<string, number>();
  const plane = await ControlPlane.start({
    node: true,
    progress: (line) => {
      const at = performance.now() - started;
      if (line.startsWith("Starting kube-controller-manager")) milestones.set("API server ready", at);
      if (line.startsWith("Node ")) milestones.set("Node Ready", at);
      if (line.startsWith("CoreDNS Ready")) milestones.set("first pod (CoreDNS) Ready", at);
    },
  });
  milestones.set("start() returned", performance.now() - started);
  return { plane, milestones };
}

async function pongerReadyMs(plane: ControlPlane): Promise<number> {
  const apps = plane.adminClientConfig().makeApiClient(AppsV1Api);
  const labels = { app: "bench-ponger" };
  const started = performance.now();
  await apps.createNamespacedDeployment({
    namespace: "default",
    body: {
      metadata: { name: "bench-ponger" },
      spec: {
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            containers: [
              {
                name: "ponger",
                image: "pingpong-operator:dev",
                imagePullPolicy: "Never",
                args: ["ponger"],
                env: [{ name: "PINGPONG_SERVICE_PROTOCOL", value: "http" }],
                readinessProbe: { httpGet: { path: "/readyz", port: 9090 }, periodSeconds: 1 },
              },
            ],
          },
        },
      },
    },
  });
  for (;;) {
    const d = await apps.readNamespacedDeployment({ name: "bench-ponger", namespace: "default" });
    if (d.status?.availableReplicas === 1) return performance.now() - started;
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function benchNode(): Promise<void> {
  console.log(
    "\n# Local node (etcd, kube-apiserver, controller-manager, scheduler, containerd, kubelet, kube-proxy, CoreDNS)",
  );
  const runs: Map<string, number>[] = [];
  const stops: number[] = [];
  for (let i = 0; i < 3; i++) {
    const { plane, milestones } = await startTimed();
    runs.push(milestones);
    if (i === 2) {
      report("apply a ponger Deployment (project image) -> Ready", (await pongerReadyMs(plane)) / 1000, "s");
      await new Promise((r) => setTimeout(r, 20_000)); // settle into idle
      let total = 0;
      for (const [name, pid] of Object.entries(plane.componentPids())) {
        const rss = await rssMiB(pid);
        total += rss;
        report(`RSS of ${name}, idle`, rss, "MiB");
      }
      const socket = plane.node?.containerdSocket ?? "";
      const shims = await processesMentioning(socket);
      const shimRss = (await Promise.all(shims.map((s) => rssMiB(s.pid)))).reduce((a, b) => a + b, 0);
      report(`RSS of containerd's shims (${shims.length})`, shimRss, "MiB");
      const pods = await podPids();
      const podRss = (await Promise.all(pods.map(rssMiB))).reduce((a, b) => a + b, 0);
      report(`RSS of the pods' processes (${pods.length}: pause, CoreDNS, ponger)`, podRss, "MiB");
      report("RSS of the whole cluster at idle", total + shimRss + podRss, "MiB");
    }
    const stopping = performance.now();
    await plane.stop();
    stops.push(performance.now() - stopping);
  }
  for (const milestone of runs[0]?.keys() ?? []) {
    const { p50, max } = summarize(runs.map((r) => r.get(milestone) ?? Number.NaN));
    report(
      `start -> ${milestone}`,
      p50 / 1000,
      "s p50",
      `max ${(max / 1000).toFixed(1)} s over ${runs.length}`,
    );
  }
  const { p50, max } = summarize(stops);
  report(
    "stop and remove from the machine",
    p50 / 1000,
    "s p50",
    `max ${(max / 1000).toFixed(1)} s over ${stops.length}`,
  );
}
