/**
 * `pingpong drill PAIR --abort 50% --for 5m`: sets spec.drill, follows the pair and prints a
 * timeline: the drill set, the ponger pods injecting it, PingHealthy False (time to detect), the
 * drill's end, PingHealthy True again (time to recover). A fault never detected is a failure: the
 * alarm did not ring. `--stop` ends a drill at once.
 */
import { formatDuration } from "../../lib/duration.ts";
import type { Drill, PingPongPair } from "../api/types.ts";
import type { KubeClient } from "../runtime/kube-client.ts";
import { resources } from "../runtime/resources.ts";
import { PairNotFoundError } from "./status.ts";

/** "50%" or "0.5" as a ratio from 0 to 1; throws saying what to write. */
export function parseRatio(text: string, flag: string): number {
  const percent = text.endsWith("%");
  const value = Number(percent ? text.slice(0, -1) : text) / (percent ? 100 : 1);
  if (text.trim() === "" || !Number.isFinite(value) || value < 0 || value > 1) {
    throw new Error(`${flag} ${text}: write a share from 0% to 100% (or 0 to 1), e.g. ${flag} 50%`);
  }
  return value;
}

/** A merge patch setting spec.drill to exactly `drill`: fields it leaves out are removed. */
export function drillPatch(drill: Drill): { spec: { drill: Record<string, unknown> } } {
  const fields = [
    "abortRatio",
    "abortStatus",
    "delayRatio",
    "delay",
    "refuseClientCertificates",
    "until",
  ] as const;
  return { spec: { drill: Object.fromEntries(fields.map((f) => [f, drill[f] ?? null])) } };
}

export class DrillNotDetectedError extends Error {
  override readonly name = "DrillNotDetectedError";
}

type Phase = "set" | "running" | "injecting" | "detected" | "ended" | "recovered";

/**
 * What a followed drill has shown so far. Fed each reading of the pair with the time it was read;
 * answers the timeline's new lines. The times it reports come from the pair's status where it has
 * them: when the ponger started injecting (status.drill.injectingSince, the ponger's clock) and when
 * PingHealthy changed (its lastTransitionTime), so they do not depend on how often this polls. Pure.
 */
export class DrillTimeline {
  private phase: Phase = "set";
  private faultStart: number | undefined;
  private endedAt: number | undefined;
  detectMs: number | undefined;
  recoverMs: number | undefined;
  private readonly until: number;

  constructor(until: Date) {
    this.until = until.getTime();
  }

  get done(): boolean {
    return this.phase === "recovered" || (this.phase === "ended" && this.detectMs === undefined);
  }

  get detected(): boolean {
    return this.detectMs !== undefined;
  }

  observe(pair: PingPongPair | undefined, now: number): string[] {
    const lines: string[] = [];
    const drill = pair?.status?.drill;
    const health = pair?.status?.conditions?.find((c) => c.type === "PingHealthy");
    const changedAt = (fallback: number) => {
      const at = Date.parse(health?.lastTransitionTime ?? "");
      return Number.isNaN(at) ? fallback : at;
    };
    const seconds = (ms: number) => `${(Math.max(0, ms) / 1000).toFixed(1)} s`;
    if (this.phase === "set" && drill?.state === "Running") {
      this.phase = "running";
      lines.push(`the operator runs the drill: ${drill.faults ?? ""}`);
    }
    if (this.phase === "running" && (drill?.injectingPongers ?? 0) > 0) {
      this.phase = "injecting";
      const since = Date.parse(drill?.injectingSince ?? "");
      this.faultStart = Number.isNaN(since) ? now : since;
      const ago = now - this.faultStart;
      lines.push(
        `fault started: ${drill?.injectingPongers ?? 0} ponger pod(s) inject it` +
          (ago >= 100 ? ` (since ${seconds(ago)} ago)` : ""),
      );
    }
    if (this.phase === "injecting" && health?.status === "False") {
      this.phase = "detected";
      this.detectMs = Math.max(0, changedAt(now) - (this.faultStart ?? now));
      lines.push(`PingHealthy False after ${seconds(this.detectMs)} (time to detect): ${health.reason}`);
    }
    if (now >= this.until && this.endedAt === undefined && this.phase !== "set") {
      this.endedAt = this.until;
      lines.push(
        this.detected
          ? "the drill ended (until reached)"
          : "the drill ended (until reached) and PingHealthy never turned False: the fault was not detected",
      );
      if (this.phase !== "detected") this.phase = "ended";
    }
    if (this.phase === "detected" && this.endedAt !== undefined && health?.status === "True") {
      this.phase = "recovered";
      this.recoverMs = Math.max(0, changedAt(now) - this.endedAt);
      lines.push(`PingHealthy True again after ${seconds(this.recoverMs)} (time to recover)`);
    }
    return lines;
  }
}

export interface DrillOptions {
  readonly namespace: string;
  readonly name: string;
  /** spec.drill to set; undefined with `stop`. */
  readonly drill?: Drill;
  readonly follow: boolean;
  /** How long to wait for recovery after the drill ends. */
  readonly recoverTimeoutMs: number;
  readonly progress: (line: string) => void;
  readonly pollMs?: number;
}

async function patch(client: KubeClient, options: DrillOptions, body: unknown): Promise<PingPongPair> {
  try {
    return await client.mergePatch<PingPongPair>(
      resources.pingPongPair,
      options.namespace,
      options.name,
      body,
    );
  } catch (error) {
    if ((error as { status?: number }).status === 404) {
      throw new PairNotFoundError(`no PingPongPair "${options.name}" in namespace "${options.namespace}"`, {
        cause: error,
      });
    }
    throw error;
  }
}

/** Sets (or stops) the drill and, when following, prints its timeline until it is over. */
export async function drill(client: KubeClient, options: DrillOptions): Promise<DrillTimeline | undefined> {
  if (!options.drill) {
    await patch(client, options, { spec: { drill: null } });
    options.progress(
      "Drill stopped: spec.drill removed; the ponger pods stop injecting when their volume updates",
    );
    return undefined;
  }
  await patch(client, options, drillPatch(options.drill));
  options.progress(`Set spec.drill until ${options.drill.until}`);
  if (!options.follow) return undefined;
  const timeline = new DrillTimeline(new Date(options.drill.until));
  const until = Date.parse(options.drill.until);
  for (;;) {
    const pair = await client.get<PingPongPair>(resources.pingPongPair, options.namespace, options.name);
    for (const line of timeline.observe(pair, Date.now())) options.progress(line);
    if (timeline.done) break;
    if (Date.now() > until + options.recoverTimeoutMs) {
      throw new DrillNotDetectedError(
        `PingHealthy did not turn True within ${formatDuration(options.recoverTimeoutMs)} of the drill's end`,
      );
    }
    await new Promise((r) => setTimeout(r, options.pollMs ?? 500));
  }
  if (!timeline.detected) {
    throw new DrillNotDetectedError(
      "the fault was never detected: PingHealthy stayed True for the whole drill (is spec.pinger.successThreshold too low, or the drill too mild?)",
    );
  }
  return timeline;
}
