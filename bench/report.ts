/** Small helpers shared by the benchmarks: timing, quantiles, CPU time and one printed line per result. */
import { execFileSync } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { monitorEventLoopDelay } from "node:perf_hooks";

let clockTicks: number | undefined;

/** User + system CPU seconds a process has used. */
export async function cpuSeconds(pid: number): Promise<number> {
  clockTicks ??= Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / clockTicks;
}

/** CPU seconds used so far by every process whose command name is one of `names`, by name. */
export async function cpuSecondsByCommand(names: readonly string[]): Promise<Map<string, number>> {
  const totals = new Map<string, number>(names.map((n) => [n, 0]));
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const comm = (await readFile(`/proc/${entry}/comm`, "utf8")).trim();
      if (totals.has(comm)) totals.set(comm, (totals.get(comm) ?? 0) + (await cpuSeconds(Number(entry))));
    } catch {
      // the process ended while we looked
    }
  }
  return totals;
}

export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

export function summarize(samples: readonly number[]): { p50: number; p99: number; max: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), max: sorted.at(-1) ?? Number.NaN };
}

export function report(name: string, value: number | string, unit = "", note = ""): void {
  const shown = typeof value === "number" ? value.toFixed(value >= 100 ? 0 : value >= 10 ? 1 : 2) : value;
  console.log(`${name.padEnd(58)} ${`${shown} ${unit}`.padEnd(18)}${note}`);
}

/** Runs `work` while sampling event-loop delay; returns the p99 and max delay in milliseconds. */
export async function withEventLoopLag<T>(
  work: () => Promise<T>,
): Promise<{ result: T; p99Ms: number; maxMs: number }> {
  const histogram = monitorEventLoopDelay({ resolution: 5 });
  histogram.enable();
  try {
    const result = await work();
    return { result, p99Ms: histogram.percentile(99) / 1e6, maxMs: histogram.max / 1e6 };
  } finally {
    histogram.disable();
  }
}
