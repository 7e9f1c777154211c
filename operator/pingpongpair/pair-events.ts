/**
 * The Events a reconcile records about its pair, decided from the status before and after: one per
 * certificate issued, one per CA rotation step (and one when a step waits past its deadline), one
 * when PingHealthy changes, one when a problem is first reported. Pure; the reconcile records them.
 */
import { conditionTypes, type PingPongPairStatus } from "../api/types.ts";
import type { EventType } from "../runtime/events.ts";
import type { Issuance } from "./certificates.ts";
import type { Problem } from "./status.ts";

export interface PairEvent {
  readonly type: EventType;
  readonly reason: string;
  readonly message: string;
}

type Status = PingPongPairStatus | undefined;

const condition = (status: Status, type: string) => status?.conditions?.find((c) => c.type === type);

export function issuanceEvent(issued: Issuance): PairEvent {
  const what = issued.role === "ca" ? "CA" : `${issued.role} certificate`;
  return {
    type: "Normal",
    reason: issued.role === "ca" ? "IssuedCA" : "IssuedCertificate",
    message: `issued the ${what} (serial ${issued.serial}): ${issued.message}`,
  };
}

/** An Event for each CA rotation step, and one when a step waits past its deadline. */
export function rotationEvent(before: Status, after: Status, advanced: boolean): PairEvent | undefined {
  const was = condition(before, conditionTypes.certificatesReady);
  const now = condition(after, conditionTypes.certificatesReady);
  if (!now) return undefined;
  if (now.reason === "RotationStuck" && was?.reason !== "RotationStuck") {
    return { type: "Warning", reason: "RotationStuck", message: now.message };
  }
  const inRotation =
    [now.reason, was?.reason].some((r) => r === "RotatingCA") || was?.reason === "RotationStuck";
  if (!advanced || !inRotation) return undefined;
  const reason = now.reason === "RotatingCA" ? "CARotationStep" : "CARotationDone";
  return { type: "Normal", reason, message: now.message };
}

/** One Event when PingHealthy changes status, none for each read. */
export function healthEvent(before: Status, after: Status): PairEvent | undefined {
  const was = condition(before, conditionTypes.pingHealthy);
  const now = condition(after, conditionTypes.pingHealthy);
  if (!now || was?.status === now.status) return undefined;
  if (!was && now.status === "Unknown") return undefined;
  return {
    type: now.status === "False" ? "Warning" : "Normal",
    reason: now.reason,
    message: `ping health is ${now.status}: ${now.message}`,
  };
}

/** A Warning for a problem, unless the Ready condition already reports this very one. */
export function problemEvent(before: Status, problem: Problem): PairEvent | undefined {
  const ready = condition(before, "Ready");
  if (ready?.reason === problem.reason && ready.message === problem.message) return undefined;
  return { type: "Warning", reason: problem.reason, message: problem.message };
}

/** One Event when a drill starts, ends or is refused. */
export function drillEvent(before: Status, after: Status): PairEvent | undefined {
  const was = before?.drill;
  const now = after?.drill;
  if (!now?.state || (was?.state === now.state && was.until === now.until && was.faults === now.faults)) {
    return undefined;
  }
  const events = {
    Running: { type: "Normal", reason: "DrillStarted" },
    Ended: { type: "Normal", reason: "DrillEnded" },
    Refused: { type: "Warning", reason: "DrillRefused" },
  } as const;
  return { ...events[now.state], message: now.message ?? "" };
}
