/**
 * The pair's status, computed from what the reconcile saw. Pure. Conditions keep their
 * lastTransitionTime unless their status changes, so an unchanged pair produces an identical status
 * and the operator does not write it.
 */
import type { V1Deployment } from "@kubernetes/client-node";
import type { ResolvedSpec } from "../api/spec.ts";
import {
  type Condition,
  type ConditionStatus,
  conditionTypes,
  type DrillStatus,
  type PingPongPair,
  type PingPongPairStatus,
} from "../api/types.ts";
import { type PingHealth, pingStatusChanged } from "../health/ping-health.ts";
import type { CertificatesResult } from "./certificates.ts";
import { selectorString } from "./names.ts";

/** A reason the pair cannot be reconciled as it is: reported, not retried hot. */
export interface Problem {
  readonly reason: "InvalidSpec" | "ChildConflict" | "ReconcileError";
  readonly message: string;
}

export interface StatusInput {
  readonly pair: PingPongPair;
  readonly now: Date;
  readonly spec?: ResolvedSpec | undefined;
  readonly certificates?: CertificatesResult | undefined;
  readonly deployments?: {
    readonly ponger?: V1Deployment | undefined;
    readonly pinger?: V1Deployment | undefined;
  };
  readonly problem?: Problem | undefined;
  /** Ping health from the pingers' /status, and how often an unchanged one is refreshed in status. */
  readonly health?: { readonly value: PingHealth; readonly refreshMs: number } | undefined;
  /** The fire drill as judged (drill.ts); status.drill is removed when the spec has none. */
  readonly drill?: DrillStatus | undefined;
}

export function setCondition(
  conditions: readonly Condition[],
  next: Omit<Condition, "lastTransitionTime">,
  now: Date,
): Condition[] {
  const existing = conditions.find((c) => c.type === next.type);
  const lastTransitionTime =
    existing && existing.status === next.status ? existing.lastTransitionTime : now.toISOString();
  const updated: Condition = { ...next, lastTransitionTime };
  return existing ? conditions.map((c) => (c.type === next.type ? updated : c)) : [...conditions, updated];
}

interface Availability {
  readonly desired: number;
  readonly ready: number;
  readonly available: boolean;
  readonly text: string;
}

function availability(
  deployment: V1Deployment | undefined,
  desired: number,
  generationSeen: boolean,
): Availability {
  const ready = deployment?.status?.readyReplicas ?? 0;
  const availableReplicas = deployment?.status?.availableReplicas ?? 0;
  const updated = deployment?.status?.updatedReplicas ?? 0;
  const current =
    deployment !== undefined &&
    generationSeen &&
    (deployment.status?.observedGeneration ?? 0) >= (deployment.metadata?.generation ?? 0);
  return {
    desired,
    ready,
    available: current && availableReplicas >= desired && updated >= desired,
    text: `${ready}/${desired}`,
  };
}

const steps = {
  TrustBoth: "step 1 of 3: every pod is to trust the old and the new CA",
  IssueLeaves:
    "step 2 of 3: leaves re-issued from the new CA; the old CA is dropped once every pod has loaded them",
} as const;

function listed(pods: readonly string[]): string {
  return pods.length <= 5 ? pods.join(", ") : `${pods.slice(0, 5).join(", ")} and ${pods.length - 5} more`;
}

/** CertificatesReady's reason and message: a rotation's step and who it waits for, or the leaves' state. */
export function certificatesCondition(certificates: CertificatesResult): { reason: string; message: string } {
  const rotation = certificates.caRotation;
  if (rotation) {
    const base = `CA rotation ${steps[rotation.phase]} (since ${rotation.since.toISOString()})`;
    if (rotation.basis === "time")
      return {
        reason: "RotatingCA",
        message: `${base}; no pod to ask, so each step lasts the rotation step`,
      };
    if (rotation.waitingFor.length === 0) return { reason: "RotatingCA", message: base };
    return {
      reason: rotation.overdue ? "RotationStuck" : "RotatingCA",
      message: `${base}; waiting for ${listed(rotation.waitingFor)}`,
    };
  }
  if (certificates.leavesLoading.length > 0) {
    return {
      reason: "Loading",
      message: `leaf certificates issued; waiting for ${listed(certificates.leavesLoading)}`,
    };
  }
  return {
    reason: "Issued",
    message: `CA and leaf certificates are valid and loaded by every running pod; next renewal at ${certificates.nextCheck.toISOString()}`,
  };
}

type SetCondition = (type: string, status: ConditionStatus, reason: string, message: string) => void;

export function buildStatus(input: StatusInput): PingPongPairStatus {
  const { pair, now, certificates, problem } = input;
  const previous = pair.status ?? {};
  const generation = pair.metadata?.generation ?? 0;
  let conditions: Condition[] = previous.conditions ?? [];
  const set: SetCondition = (type, status, reason, message) => {
    conditions = setCondition(
      conditions,
      { type, status, reason, message, observedGeneration: generation },
      now,
    );
  };
  const status: PingPongPairStatus = { ...previous, observedGeneration: generation };
  if (certificates) {
    const { reason, message } = certificatesCondition(certificates);
    set(conditionTypes.certificatesReady, "True", reason, message);
    status.ca = certificates.status.ca;
    status.certificates = certificates.status.certificates;
  }
  if (input.spec) {
    if (input.drill) status.drill = input.drill;
    else delete status.drill;
  }
  const workloadsAvailable = reportWorkloads(input, status, set);
  reportHealth(input, status, set, conditions);
  const find = (type: string) => conditions.find((c) => c.type === type);
  const [readyStatus, reason, message]: [ConditionStatus, string, string] = problem
    ? ["False", problem.reason, problem.message]
    : readiness(
        find(conditionTypes.certificatesReady),
        workloadsAvailable ? undefined : find(conditionTypes.workloadsAvailable),
        find(conditionTypes.pingHealthy),
      );
  set(conditionTypes.ready, readyStatus, reason, message);
  // Keep the conditions in a stable order: the four types first, as documented.
  const order: string[] = Object.values(conditionTypes);
  status.conditions = [...conditions].sort((a, b) => order.indexOf(a.type) - order.indexOf(b.type));
  return status;
}

/** status.ponger, status.pinger and WorkloadsAvailable; whether both are available. */
function reportWorkloads(input: StatusInput, status: PingPongPairStatus, set: SetCondition): boolean {
  const { spec, deployments, pair } = input;
  if (!spec || !deployments) return false;
  const ponger = availability(deployments.ponger, spec.ponger.replicas, true);
  const pinger = availability(deployments.pinger, spec.pinger.replicas, true);
  const available = ponger.available && pinger.available;
  set(
    conditionTypes.workloadsAvailable,
    available ? "True" : "False",
    available ? "Available" : deployments.ponger && deployments.pinger ? "Progressing" : "Missing",
    `ponger ${ponger.text} ready, pinger ${pinger.text} ready`,
  );
  status.ponger = {
    replicas: deployments.ponger?.status?.replicas ?? 0,
    readyReplicas: ponger.ready,
    selector: selectorString(pair.metadata?.name ?? "", "ponger"),
    ready: ponger.text,
  };
  status.pinger = {
    replicas: deployments.pinger?.status?.replicas ?? 0,
    readyReplicas: pinger.ready,
    ready: pinger.text,
  };
  return available;
}

/** status.ping and PingHealthy. */
function reportHealth(
  input: StatusInput,
  status: PingPongPairStatus,
  set: SetCondition,
  conditions: readonly Condition[],
): void {
  const { health, pair } = input;
  if (health) {
    const { ping, condition } = health.value;
    // Keep what status holds unless the new reading says something different: noise is not written.
    if (pingStatusChanged(pair.status?.ping, ping, health.refreshMs)) {
      if (ping) status.ping = ping;
      else delete status.ping;
    }
    // During a drill, a PingHealthy that is not True says so: it is the drill, not an outage.
    const drill =
      input.drill?.state === "Running" && condition.status !== "True" ? `; ${input.drill.message}` : "";
    set(conditionTypes.pingHealthy, condition.status, condition.reason, condition.message + drill);
  } else if (!conditions.some((c) => c.type === conditionTypes.pingHealthy)) {
    set(
      conditionTypes.pingHealthy,
      "Unknown",
      "NotMeasured",
      "ping health has not been read from the pingers yet",
    );
  }
}

/** Ready, from the other conditions: the first thing missing, or ready. */
function readiness(
  certificatesReady: Condition | undefined,
  workloadsUnavailable: Condition | undefined,
  pingHealthy: Condition | undefined,
): [ConditionStatus, string, string] {
  if (certificatesReady?.status !== "True")
    return ["False", "CertificatesNotReady", "the certificates are not issued yet"];
  if (workloadsUnavailable)
    return ["False", "WorkloadsUnavailable", `waiting for pods: ${workloadsUnavailable.message}`];
  if (pingHealthy?.status !== "True") {
    const reason = pingHealthy?.status === "False" ? "PingUnhealthy" : "PingHealthUnknown";
    return ["False", reason, `ping health: ${pingHealthy?.message ?? "not measured yet"}`];
  }
  return ["True", "Ready", "certificates issued, every pod ready, pings healthy"];
}
