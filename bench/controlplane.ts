/**
 * Control-plane benchmark: warm start time of the local control plane (binaries already built) and
 * the resident memory of each component once it is up and idle.
 */
import { readFileSync } from "node:fs";
import { ControlPlane } from "../controlplane/control-plane.ts";
import { report, summarize } from "./report.ts";

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? Number.NaN);
  return kb / 1024;
}

export async function benchControlPlane(): Promise<void> {
  console.log("\n# Local control plane (etcd + kube-apiserver + kube-controller-manager)");
  const starts: number[] = [];
  for (let i = 0; i < 3; i++) {
    const started = performance.now();
    const plane = await ControlPlane.start();
    starts.push(performance.now() - started);
    if (i === 2) {
      await new Promise((r) => setTimeout(r, 10_000)); // let it settle into idle
      let total = 0;
      for (const [name, pid] of Object.entries(plane.componentPids())) {
        const rss = rssMiB(pid);
        total += rss;
        report(`RSS of ${name}, idle 10 s after start`, rss, "MiB");
      }
      report("RSS of the whole control plane", total, "MiB");
    }
    await plane.stop();
  }
  const { p50, max } = summarize(starts);
  report(
    "start to ready (controller manager running)",
    p50 / 1000,
    "s p50",
    `max ${(max / 1000).toFixed(1)} s over ${starts.length}`,
  );
}
