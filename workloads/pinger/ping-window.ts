/**
 * Recent ping results over a sliding time window, for /status and readiness: counts, success
 * ratio, latency quantiles, last pong. Pure: the caller passes the clock.
 */

export interface PingResult {
  readonly at: number;
  readonly ok: boolean;
  readonly rttMs: number;
  /** Why it failed (workloads/pinger/failure.ts), for failed pings. */
  readonly reason?: string;
  /** The ponger pod that answered, for pongs. */
  readonly pod?: string;
  /** The node of the ponger pod that answered, for pongs, when it said. */
  readonly node?: string;
}

export interface PingWindowSnapshot {
  readonly windowSeconds: number;
  readonly sent: number;
  readonly succeeded: number;
  readonly failed: number;
  /** succeeded / sent over the window; null before any ping completed. */
  readonly successRatio: number | null;
  readonly latencyP50Ms: number | null;
  readonly latencyP99Ms: number | null;
  /** Failed pings in the window by reason (timeout, tls, connection, http_status, bad_body). */
  readonly failuresByReason: Readonly<Record<string, number>>;
}

/** Nearest-rank quantile of ascending `sorted`; null when empty. */
export function quantile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1] ?? null;
}

export class PingWindow {
  private results: PingResult[] = [];
  private readonly windowMs: number;
  private readonly maxResults: number;

  constructor(windowMs = 60_000, maxResults = 100_000) {
    this.windowMs = windowMs;
    this.maxResults = maxResults;
  }

  record(result: PingResult): void {
    this.results.push(result);
    if (this.results.length > this.maxResults) this.results.splice(0, this.results.length - this.maxResults);
  }

  private prune(now: number): void {
    const cutoff = now - this.windowMs;
    let first = 0;
    while (first < this.results.length && (this.results[first]?.at ?? 0) < cutoff) first++;
    if (first > 0) this.results.splice(0, first);
  }

  snapshot(now: number): PingWindowSnapshot {
    this.prune(now);
    const succeeded = this.results.filter((r) => r.ok);
    const latencies = succeeded.map((r) => r.rttMs).sort((a, b) => a - b);
    const round = (v: number | null) => (v === null ? null : Math.round(v * 100) / 100);
    const failuresByReason: Record<string, number> = {};
    for (const r of this.results) {
      if (!r.ok) failuresByReason[r.reason ?? "unknown"] = (failuresByReason[r.reason ?? "unknown"] ?? 0) + 1;
    }
    return {
      windowSeconds: this.windowMs / 1000,
      sent: this.results.length,
      succeeded: succeeded.length,
      failed: this.results.length - succeeded.length,
      successRatio: this.results.length === 0 ? null : succeeded.length / this.results.length,
      latencyP50Ms: round(quantile(latencies, 0.5)),
      latencyP99Ms: round(quantile(latencies, 0.99)),
      failuresByReason,
    };
  }

  /** Pongs in the window by the pod that answered (the same window as `sent`). */
  pongsByPod(now: number): Record<string, number> {
    return this.pongsBy("pod", now);
  }

  /** Pongs in the window by the node of the pod that answered ("unknown" when it did not say). */
  pongsByNode(now: number): Record<string, number> {
    return this.pongsBy("node", now);
  }

  private pongsBy(key: "pod" | "node", now: number): Record<string, number> {
    this.prune(now);
    const counts: Record<string, number> = {};
    for (const r of this.results) {
      if (!r.ok) continue;
      const name = r[key] ?? (key === "node" ? "unknown" : undefined);
      if (name !== undefined) counts[name] = (counts[name] ?? 0) + 1;
    }
    return counts;
  }

  /** The last `count` results, newest last. */
  recent(count: number): readonly PingResult[] {
    return this.results.slice(-count);
  }
}
