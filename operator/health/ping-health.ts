/**
 * A pair's ping health from what its pinger pods report on /status: one `status.ping` and the
 * PingHealthy condition. Pure: the readings and the clock are inputs.
 *
 * Several pingers are summed over their windows (sent, succeeded, failed, failures by reason); P50
 * is the median of their P50s and P99 the worst of their P99s (quantiles do not add up, and the
 * worst is what a user needs to see), and the worst pinger is named.
 */
import type { PingWindowSnapshot } from "../../workloads/pinger/ping-window.ts";
import type { ConditionStatus, PingPongPairStatus } from "../api/types.ts";

/** status.ping as stored: any field may be missing. */
type StoredPing = NonNullable<PingPongPairStatus["ping"]>;

/** The part of a pinger's /status that health needs (workloads/pinger/pinger.ts). */
export interface PingerReport {
  readonly lastPongTime: string | null;
  /** failuresByReason may be missing: pingers of earlier versions do not count it. */
  readonly window: Omit<PingWindowSnapshot, "failuresByReason"> &
    Partial<Pick<PingWindowSnapshot, "failuresByReason">>;
  readonly pongsByPod: Readonly<Record<string, number>>;
  /** The pinger's node, and its pongs by the answering ponger's node (pingers of earlier versions: none). */
  readonly node?: string | null;
  readonly pongsByNode?: Readonly<Record<string, number>>;
  readonly lastFailure: { readonly reason: string; readonly message: string } | null;
}

/** The latest read of one pinger pod: its report, or why it could not be read. */
export type PingerReading =
  | { readonly pod: string; readonly at: Date; readonly report: PingerReport }
  | { readonly pod: string; readonly at: Date; readonly error: string };

export interface PingStatus {
  lastPongTime?: string;
  windowSeconds: number;
  sent: number;
  succeeded: number;
  failed: number;
  successRatio: number;
  latencyP50Ms?: number;
  latencyP99Ms?: number;
  /** For `kubectl get`: the ratio as a percentage, and P99 with its unit. */
  success: string;
  latencyP99?: string;
  pongsByPod: Record<string, number>;
  /**
   * Where the pings travel: pongs by pinger node and ponger node, and each pinger node's failed pings
   * (a failed ping has no ponger to name). Sorted; `paths` says in words whether they cross nodes.
   */
  paths?: PingPath[];
  pathsSummary?: string;
  failuresByPingerNode?: Record<string, number>;
  failuresByReason?: Record<string, number>;
  pingers: number;
  worstPinger?: { pod: string; successRatio: number; latencyP99Ms?: number };
}

export interface PingPath {
  pingerNode: string;
  pongerNode: string;
  pongs: number;
}

/** Pongs by (pinger node, ponger node) over the reports, and failures by pinger node. */
export function pingPaths(reports: readonly PingerReport[]): {
  paths: PingPath[];
  failedByPingerNode: Record<string, number>;
  summary: string;
} {
  const pongs = new Map<string, PingPath>();
  const failedByPingerNode: Record<string, number> = {};
  for (const report of reports) {
    const from = report.node ?? "unknown";
    if (report.window.failed > 0)
      failedByPingerNode[from] = (failedByPingerNode[from] ?? 0) + report.window.failed;
    for (const [to, count] of Object.entries(report.pongsByNode ?? {})) {
      const key = `${from}\n${to}`;
      const path = pongs.get(key) ?? { pingerNode: from, pongerNode: to, pongs: 0 };
      path.pongs += count;
      pongs.set(key, path);
    }
  }
  const paths = [...pongs.values()].sort(
    (a, b) => a.pingerNode.localeCompare(b.pingerNode) || a.pongerNode.localeCompare(b.pongerNode),
  );
  const known = paths.filter((p) => p.pingerNode !== "unknown" && p.pongerNode !== "unknown");
  const crossing = known.filter((p) => p.pingerNode !== p.pongerNode).length;
  const summary =
    known.length === 0
      ? "the nodes are unknown"
      : crossing === 0
        ? `node-local: every pong came from the pinger's own node (${[...new Set(known.map((p) => p.pingerNode))].join(", ")})`
        : `${crossing} of ${known.length} node pairs cross nodes`;
  return { paths, failedByPingerNode, summary };
}

export interface PingHealthInput {
  /** One reading per running pinger pod (pods with an IP), the latest. */
  readonly readings: readonly PingerReading[];
  /** Running pinger pods; 0 means there is nothing to read. */
  readonly runningPingers: number;
  /** Success ratio at or above which the pair is healthy (spec.pinger.successThreshold). */
  readonly threshold: number;
  /** A pong older than this is not recent. */
  readonly recentMs: number;
  readonly now: Date;
}

export interface PingHealthCondition {
  readonly status: ConditionStatus;
  readonly reason:
    | "Healthy"
    | "PingsFailing"
    | "NoRecentPong"
    | "NoPingerRunning"
    | "NotReadYet"
    | "PingersUnreachable"
    | "NoPingsYet";
  readonly message: string;
}

export interface PingHealth {
  readonly ping: PingStatus | undefined;
  readonly condition: PingHealthCondition;
}

/** 0.98765 -> "98.8%", 1 -> "100%", 0 -> "0%". */
export function percent(ratio: number): string {
  const value = Math.floor(ratio * 1000) / 10;
  return `${Number.isInteger(value) ? value.toFixed(0) : value.toFixed(1)}%`;
}

/** Tenths of a millisecond below 10 ms, two significant digits above: 0.834 -> 0.8, 12.7 -> 13, 1234 -> 1200. */
export function roundLatency(ms: number): number {
  if (ms < 10) return Math.max(0.1, Math.round(ms * 10) / 10);
  const magnitude = 10 ** (Math.floor(Math.log10(ms)) - 1);
  return Math.round(ms / magnitude) * magnitude;
}

export function formatLatency(ms: number): string {
  return ms < 10 ? `${Number(ms.toFixed(1))}ms` : `${Math.round(ms)}ms`;
}

function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

function seconds(ms: number): string {
  return ms >= 120_000 ? `${Math.round(ms / 60_000)}m` : `${Math.round(ms / 1000)}s`;
}

function windowWords(windowSeconds: number): string {
  return windowSeconds === 60 ? "the last minute" : `the last ${seconds(windowSeconds * 1000)}`;
}

function reasonsText(reasons: Readonly<Record<string, number>>): string {
  return Object.entries(reasons)
    .sort(([a, x], [b, y]) => y - x || a.localeCompare(b))
    .map(([reason, count]) => `${reason} (${count})`)
    .join(", ");
}

export function pingHealth(input: PingHealthInput): PingHealth {
  const { readings, runningPingers } = input;
  if (runningPingers === 0) {
    return {
      ping: undefined,
      condition: { status: "Unknown", reason: "NoPingerRunning", message: "no pinger pod is running" },
    };
  }
  const reports = readings.flatMap((r) => ("report" in r ? [{ pod: r.pod, report: r.report }] : []));
  const errors = readings.flatMap((r) => ("error" in r ? [r] : []));
  if (reports.length === 0) return { ping: undefined, condition: unreadCondition(errors, runningPingers) };
  const totals = aggregate(reports);
  return {
    ping: pingStatus(totals, reports),
    condition: healthCondition(input, totals, reports, errors.length),
  };
}

type Report = { readonly pod: string; readonly report: PingerReport };

/** Why there is no ping health to tell: no pinger read yet, or none could be read. */
function unreadCondition(
  errors: readonly { pod: string; error: string }[],
  runningPingers: number,
): PingHealthCondition {
  const first = errors[0];
  if (first === undefined) {
    return {
      status: "Unknown",
      reason: "NotReadYet",
      message: `the ${runningPingers} running pinger pod(s) have not been read yet`,
    };
  }
  return {
    status: "Unknown",
    reason: "PingersUnreachable",
    message:
      `cannot read /status of ${errors.length} of ${runningPingers} pinger pod(s) (${first.pod}: ${first.error}); ` +
      "the operator must reach pod IPs on the metrics port (an operator outside the cluster cannot)",
  };
}

interface Totals {
  sent: number;
  succeeded: number;
  failed: number;
  lastPong: number | undefined;
  readonly failuresByReason: Record<string, number>;
  readonly pongsByPod: Record<string, number>;
  readonly windowSeconds: number;
}

/** The pingers' windows added up. */
function aggregate(reports: readonly Report[]): Totals {
  const totals: Totals = {
    sent: 0,
    succeeded: 0,
    failed: 0,
    lastPong: undefined,
    failuresByReason: {},
    pongsByPod: {},
    windowSeconds: Math.max(...reports.map((r) => r.report.window.windowSeconds)),
  };
  const add = (into: Record<string, number>, from: Record<string, number>) => {
    for (const [key, count] of Object.entries(from)) into[key] = (into[key] ?? 0) + count;
  };
  for (const { report } of reports) {
    totals.sent += report.window.sent;
    totals.succeeded += report.window.succeeded;
    totals.failed += report.window.failed;
    add(totals.failuresByReason, report.window.failuresByReason ?? {});
    add(totals.pongsByPod, report.pongsByPod);
    const pong = report.lastPongTime ? Date.parse(report.lastPongTime) : Number.NaN;
    if (!Number.isNaN(pong)) totals.lastPong = Math.max(totals.lastPong ?? pong, pong);
  }
  return totals;
}

const ratioOf = (r: PingerReport) => (r.window.sent === 0 ? 1 : r.window.succeeded / r.window.sent);

/** The pinger doing worst (lowest success, then highest P99), when there is more than one. */
function worstPinger(reports: readonly Report[]): Pick<PingStatus, "worstPinger"> {
  const worst = [...reports].sort(
    (a, b) =>
      ratioOf(a.report) - ratioOf(b.report) ||
      (b.report.window.latencyP99Ms ?? 0) - (a.report.window.latencyP99Ms ?? 0),
  )[0];
  if (reports.length < 2 || !worst) return {};
  const p99 = worst.report.window.latencyP99Ms;
  return {
    worstPinger: {
      pod: worst.pod,
      successRatio: Math.floor(ratioOf(worst.report) * 1000) / 1000,
      ...(p99 === null ? {} : { latencyP99Ms: roundLatency(p99) }),
    },
  };
}

function pingStatus(totals: Totals, reports: readonly Report[]): PingStatus {
  const { sent, succeeded, failed, lastPong } = totals;
  const p50 = median(reports.flatMap((r) => r.report.window.latencyP50Ms ?? []));
  const p99s = reports.flatMap((r) => r.report.window.latencyP99Ms ?? []);
  const p99 = p99s.length > 0 ? roundLatency(Math.max(...p99s)) : undefined;
  const where = pingPaths(reports.map((r) => r.report));
  return {
    ...(lastPong === undefined ? {} : { lastPongTime: new Date(lastPong).toISOString() }),
    windowSeconds: totals.windowSeconds,
    sent,
    succeeded,
    failed,
    successRatio: sent === 0 ? 0 : Math.floor((succeeded / sent) * 1000) / 1000,
    ...(p50 === undefined ? {} : { latencyP50Ms: roundLatency(p50) }),
    ...(p99 === undefined ? {} : { latencyP99Ms: p99, latencyP99: formatLatency(p99) }),
    success: sent === 0 ? "-" : percent(succeeded / sent),
    pongsByPod: totals.pongsByPod,
    ...(where.paths.length > 0 ? { paths: where.paths, pathsSummary: where.summary } : {}),
    ...(failed > 0
      ? { failuresByReason: totals.failuresByReason, failuresByPingerNode: where.failedByPingerNode }
      : {}),
    pingers: reports.length,
    ...worstPinger(reports),
  };
}

/** PingHealthy: no pings yet, failing below the threshold, no recent pong, or healthy. */
function healthCondition(
  input: PingHealthInput,
  totals: Totals,
  reports: readonly Report[],
  unreadable: number,
): PingHealthCondition {
  const { threshold, now, recentMs, runningPingers } = input;
  const { sent, succeeded, failed, lastPong } = totals;
  const window = windowWords(totals.windowSeconds);
  const unread = unreadable > 0 ? `; ${unreadable} of ${runningPingers} pinger pod(s) could not be read` : "";
  if (sent === 0) {
    return {
      status: "Unknown",
      reason: "NoPingsYet",
      message: `no ping completed in ${window} yet${unread}`,
    };
  }
  if (succeeded / sent < threshold) {
    const lastFailure = reports.find((r) => r.report.lastFailure)?.report.lastFailure;
    return {
      status: "False",
      reason: "PingsFailing",
      message:
        `${failed} of ${sent} pings failed in ${window}: ${reasonsText(totals.failuresByReason)}` +
        ` (threshold ${percent(threshold)} success)` +
        (lastFailure ? `; last: ${lastFailure.message}` : "") +
        unread,
    };
  }
  if (lastPong === undefined || now.getTime() - lastPong > recentMs) {
    return {
      status: "False",
      reason: "NoRecentPong",
      message:
        lastPong === undefined
          ? "no pong has been received yet"
          : `no pong for ${seconds(now.getTime() - lastPong)} (last at ${new Date(lastPong).toISOString()})`,
    };
  }
  return {
    status: "True",
    reason: "Healthy",
    message: `pings succeed at or above ${percent(threshold)} in ${window}${unread}`,
  };
}

/** Whether a latency moved enough to tell: it appeared or went, or doubled or halved (by over 1 ms). */
export function latencyMoved(before: number | null | undefined, after: number | null | undefined): boolean {
  if ((before ?? undefined) === undefined || (after ?? undefined) === undefined)
    return (before ?? undefined) !== (after ?? undefined);
  const [b, a] = [before as number, after as number];
  return Math.abs(a - b) > 1 && (a >= 2 * b || a <= b / 2);
}

/**
 * Whether `next` differs from what status holds enough to be written: health changed (a failure in
 * the window, the success percentage, the set of ponger pods), P99 doubled or halved, or the last
 * pong is `refreshMs` newer. Noise (one more ping sent, a P99 that wobbles, counts that only grow)
 * is not written.
 */
export function pingStatusChanged(
  previous: PingPongPairStatus["ping"],
  next: PingStatus | undefined,
  refreshMs: number,
): boolean {
  if (previous === undefined || next === undefined) return previous !== next;
  if (previous.failed !== next.failed || previous.success !== next.success) return true;
  if (previous.pingers !== next.pingers || previous.worstPinger?.pod !== next.worstPinger?.pod) return true;
  const pods = (p: StoredPing) =>
    Object.keys(p.pongsByPod ?? {})
      .sort()
      .join(",");
  if (pods(previous) !== pods(next)) return true;
  const before = previous.latencyP99Ms;
  const after = next.latencyP99Ms;
  if ((before === undefined) !== (after === undefined)) return true;
  if (before !== undefined && after !== undefined && Math.abs(after - before) > Math.max(1, 0.25 * before))
    return true;
  const sentBefore = previous.sent ?? 0;
  if (Math.abs(next.sent - sentBefore) > Math.max(2, 0.1 * sentBefore)) return true;
  const pong = (p: StoredPing) => (p.lastPongTime ? Date.parse(p.lastPongTime) : 0);
  return pong(next) - pong(previous) >= refreshMs;
}
