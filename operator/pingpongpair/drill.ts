/**
 * The fire drill (spec.drill) as the operator judges it. CEL has no clock, so time is judged here:
 * a drill whose `until` has passed has Ended, one more than 24 hours ahead is Refused (not started),
 * any other is Running. The ponger gets the drill in its ConfigMap (drill.json) and judges `until`
 * again on its own clock, so a drill ends on time even when the operator is down. Pure.
 */
import { formatDuration } from "../../lib/duration.ts";
import type { DrillState, DrillStatus } from "../api/types.ts";

/** spec.drill with its defaults applied and its times parsed (api/spec.ts). */
export interface ResolvedDrill {
  readonly abortRatio: number;
  readonly abortStatus: number;
  readonly delayRatio: number;
  readonly delayMs: number;
  readonly refuseClientCertificates: boolean;
  readonly until: Date;
}

/** What the ponger reads from drill.json; `{}` when no drill is to run. */
export interface DrillFile {
  readonly abortRatio?: number;
  readonly abortStatus?: number;
  readonly delayRatio?: number;
  readonly delayMs?: number;
  readonly refuseClientCertificates?: boolean;
  readonly until?: string;
}

/** A drill may run at most this far ahead of now. */
export const maxDrillAheadMs = 24 * 3_600_000;

export interface DrillJudgement {
  readonly status: DrillStatus | undefined;
  /** The ponger's drill.json. */
  readonly file: DrillFile;
  /** When the judgement changes by time alone (the drill ends, or comes within 24 hours). */
  readonly nextCheck: Date | undefined;
}

const percentOf = (ratio: number) => `${Math.round(ratio * 1000) / 10}%`;

/** What a drill injects, in words: "abort 50% (503), delay 100% by 300ms". */
export function describeFaults(drill: ResolvedDrill): string {
  return [
    ...(drill.abortRatio > 0 ? [`abort ${percentOf(drill.abortRatio)} (${drill.abortStatus})`] : []),
    ...(drill.delayRatio > 0
      ? [`delay ${percentOf(drill.delayRatio)} by ${formatDuration(drill.delayMs)}`]
      : []),
    ...(drill.refuseClientCertificates ? ["refuse client certificates"] : []),
  ].join(", ");
}

export function drillFile(drill: ResolvedDrill): DrillFile {
  return {
    ...(drill.abortRatio > 0 ? { abortRatio: drill.abortRatio, abortStatus: drill.abortStatus } : {}),
    ...(drill.delayRatio > 0 ? { delayRatio: drill.delayRatio, delayMs: drill.delayMs } : {}),
    ...(drill.refuseClientCertificates ? { refuseClientCertificates: true } : {}),
    until: drill.until.toISOString(),
  };
}

function state(drill: ResolvedDrill, now: Date): DrillState {
  if (drill.until.getTime() <= now.getTime()) return "Ended";
  return drill.until.getTime() - now.getTime() > maxDrillAheadMs ? "Refused" : "Running";
}

const messages: Record<DrillState, (faults: string, until: string) => string> = {
  Running: (faults, until) =>
    `a fire drill is running until ${until} (${faults}): PingHealthy False and alerts with drill="true" are expected`,
  Ended: (_faults, until) => `the fire drill ended at ${until}; remove spec.drill to clear this`,
  Refused: (_faults, until) =>
    `spec.drill.until (${until}) is more than 24 hours ahead, so the drill was not started; set an until within 24 hours`,
};

/** The drill's state, its status, the ponger's drill.json and when to look again. */
export function judgeDrill(
  drill: ResolvedDrill | undefined,
  now: Date,
  previous: DrillStatus | undefined,
  injecting: { readonly pongers: number; readonly since?: string | undefined } = { pongers: 0 },
): DrillJudgement {
  if (!drill) return { status: undefined, file: {}, nextCheck: undefined };
  const current = state(drill, now);
  const faults = describeFaults(drill);
  const until = drill.until.toISOString();
  const same = previous?.until === until && previous.faults === faults;
  const startedAt =
    same && previous.startedAt ? previous.startedAt : current === "Running" ? now.toISOString() : undefined;
  const status: DrillStatus = {
    state: current,
    faults,
    until,
    message: messages[current](faults, until),
    ...(startedAt ? { startedAt } : {}),
    injectingPongers: injecting.pongers,
    ...(current === "Running" && injecting.since ? { injectingSince: injecting.since } : {}),
  };
  const nextCheck =
    current === "Running"
      ? drill.until
      : current === "Refused"
        ? new Date(drill.until.getTime() - maxDrillAheadMs)
        : undefined;
  // Refused: the ponger is told nothing. Ended: it keeps the drill and, past `until`, ignores it.
  return { status, file: current === "Refused" ? {} : drillFile(drill), nextCheck };
}
