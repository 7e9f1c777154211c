/**
 * CA rotation as one pure state machine. A new CA (rotateCA changed, renewal due, the CA Secret lost
 * or corrupted) starts it; every step waits for what the pods report having loaded:
 *
 *   TrustBoth    every ca.crt holds the new CA and every CA still needed; leaves stay as they are.
 *                Advances once every running pod that loads a trust bundle reports the new CA in it.
 *   IssueLeaves  leaves are re-issued from the new CA; ca.crt still holds the old ones. Finishes once
 *                every running pod reports the new leaf for its role loaded.
 *   (idle)       the old CAs are dropped from ca.crt.
 *
 * Each step lasts at least `minDwellMs` (--ca-rotation-step). Past `maxWaitMs` it does not advance
 * blindly: it names the pods that lag. With no pod to ask (scaled to zero, no node) it advances on
 * time alone, and says so. A new CA during a rotation starts it again and keeps every CA of the one
 * in progress, so no live leaf loses the CA that signed it. Stored state that cannot be read (a
 * garbage phase or date) never throws: it restarts the current step's dwell, keeping all CAs.
 *
 * Inputs are the stored state, the policy's decision, what the pods report and the time; the output
 * is the next phase, the CAs to keep in the bundle, and when to look again. No I/O.
 */

export type CaRotationPhase = "TrustBoth" | "IssueLeaves";

/** What one running pod reported on /status about the TLS material it has loaded. */
export interface PodObservation {
  readonly pod: string;
  readonly component: "ponger" | "pinger";
  /** Fingerprints of the CAs in its loaded trust bundle; undefined when it could not be read. */
  readonly trust?: readonly string[] | undefined;
  /** Fingerprint of its loaded leaf certificate, if any. */
  readonly leaf?: string | undefined;
  /** Why it could not be read. */
  readonly error?: string | undefined;
}

export interface CaRotationInput {
  readonly now: Date;
  readonly minDwellMs: number;
  readonly maxWaitMs: number;
  /** The CA Secret's annotations and its previous.crt CAs (PEM, expired ones already dropped). */
  readonly stored: {
    readonly phase?: string | undefined;
    readonly since?: string | undefined;
    readonly previous: readonly string[];
  };
  /** Set when the policy replaced the CA in this reconcile: the CAs to carry over (PEM). */
  readonly replaced?: { readonly carryOver: readonly string[] } | undefined;
  /** SHA-256 fingerprint of the current (possibly new) CA. */
  readonly caFingerprint: string;
  /** The leaves in the Secrets now, and whether the current CA signed them. */
  readonly leaves: {
    readonly ponger: { readonly fingerprint: string; readonly fromCurrentCa: boolean } | undefined;
    readonly pinger: { readonly fingerprint: string; readonly fromCurrentCa: boolean } | undefined;
  };
  readonly pods: readonly PodObservation[];
  /** Running pods (with an IP); readings may lag behind them. */
  readonly running: number;
  readonly mutualTls: boolean;
}

export interface CaRotationDecision {
  readonly phase: CaRotationPhase | undefined;
  readonly since: Date;
  /** CAs (PEM) kept in every ca.crt besides the current one. */
  readonly previous: readonly string[];
  /** Pods holding a step back, each with what it lacks. */
  readonly waitingFor: readonly string[];
  /** Past maxWaitMs in this step. */
  readonly overdue: boolean;
  /** "pods": steps follow what pods report; "time": no pod to ask, steps follow the clock. */
  readonly basis: "pods" | "time";
  /** The step advanced (or the rotation started or finished) in this decision. */
  readonly advanced: boolean;
  readonly nextCheck: Date;
}

function parsePhase(value: string | undefined): CaRotationPhase | undefined {
  return value === "TrustBoth" || value === "IssueLeaves" ? value : undefined;
}

/** A stored time, or `now` when it is missing, unreadable or in the future. */
function parseSince(value: string | undefined, now: Date): Date {
  const time = value === undefined ? Number.NaN : Date.parse(value);
  return Number.isNaN(time) || time > now.getTime() ? now : new Date(time);
}

function unique(pems: readonly string[]): string[] {
  return [...new Set(pems.map((p) => p.trim() + "\n"))];
}

/** Whether a pod loads a trust bundle, and a leaf, in this TLS mode. */
function expects(pod: PodObservation, mutualTls: boolean): { trust: boolean; leaf: boolean } {
  return pod.component === "pinger" ? { trust: true, leaf: mutualTls } : { trust: mutualTls, leaf: true };
}

/** Pods that do not yet trust the CA `fingerprint`, with what they lack. */
export function podsNotTrusting(
  pods: readonly PodObservation[],
  fingerprint: string,
  mutualTls: boolean,
): string[] {
  return pods.flatMap((pod) => {
    if (pod.error !== undefined) return [`${pod.pod} (unreadable: ${pod.error})`];
    if (!expects(pod, mutualTls).trust) return [];
    return pod.trust?.includes(fingerprint) ? [] : [`${pod.pod} (has not loaded the new CA)`];
  });
}

/** Pods that have not loaded the leaf their role should have now. */
export function podsWithoutLeaves(
  pods: readonly PodObservation[],
  leaves: CaRotationInput["leaves"],
  mutualTls: boolean,
): string[] {
  return pods.flatMap((pod) => {
    if (pod.error !== undefined) return [`${pod.pod} (unreadable: ${pod.error})`];
    if (!expects(pod, mutualTls).leaf) return [];
    const wanted = leaves[pod.component]?.fingerprint;
    return wanted !== undefined && pod.leaf === wanted
      ? []
      : [`${pod.pod} (has not loaded its new certificate)`];
  });
}

export function decideCaRotation(input: CaRotationInput): CaRotationDecision {
  const { now, minDwellMs, maxWaitMs, stored, replaced } = input;
  const at = (ms: number) => new Date(now.getTime() + ms);
  const step = (
    phase: CaRotationPhase | undefined,
    rest: Partial<CaRotationDecision>,
  ): CaRotationDecision => ({
    phase,
    since: now,
    previous: phase ? unique(stored.previous) : [],
    waitingFor: [],
    overdue: false,
    basis: "pods",
    advanced: true,
    nextCheck: at(phase ? minDwellMs : 24 * 3_600_000),
    ...rest,
  });

  // A new CA: start (again) at TrustBoth, keeping every CA of a rotation in progress.
  if (replaced) {
    const previous = unique([...replaced.carryOver, ...stored.previous]);
    const basis = input.running === 0 ? "time" : "pods";
    const nextCheck = at(minDwellMs);
    return step(previous.length > 0 ? "TrustBoth" : undefined, {
      previous: previous.length > 0 ? previous : [],
      basis,
      nextCheck,
    });
  }
  // Stored CAs with no readable phase: a rotation whose state was damaged. TrustBoth is safe:
  // it keeps every CA and every leaf.
  const phase = parsePhase(stored.phase) ?? (stored.previous.length > 0 ? "TrustBoth" : undefined);
  if (phase === undefined) return step(undefined, { advanced: false });
  const since = parsePhase(stored.phase) ? parseSince(stored.since, now) : now;
  const elapsed = now.getTime() - since.getTime();
  const dwelt = elapsed >= minDwellMs;
  const { basis, waitingFor } = lagging(input, phase);
  if (dwelt && waitingFor.length === 0 && leavesIssued(input, phase)) {
    return phase === "TrustBoth" ? step("IssueLeaves", { basis }) : step(undefined, {});
  }
  const overdue = elapsed >= maxWaitMs;
  // Readings wake the pair when pods load something; the clock is for the dwell and the deadline.
  const nextCheck = !dwelt
    ? new Date(since.getTime() + minDwellMs)
    : overdue
      ? at(minDwellMs)
      : new Date(since.getTime() + maxWaitMs);
  return step(phase, { since, waitingFor, overdue, basis, advanced: false, nextCheck });
}

/** Who holds the current step back: pods that lack what it needs, and running pods not read yet. */
function lagging(
  input: CaRotationInput,
  phase: CaRotationPhase,
): Pick<CaRotationDecision, "basis" | "waitingFor"> {
  const { pods, mutualTls } = input;
  if (input.running === 0 && pods.length === 0) return { basis: "time", waitingFor: [] };
  const lacking =
    phase === "TrustBoth"
      ? podsNotTrusting(pods, input.caFingerprint, mutualTls)
      : [
          ...podsWithoutLeaves(pods, input.leaves, mutualTls),
          ...podsNotTrusting(pods, input.caFingerprint, mutualTls),
        ];
  // Running pods not read yet lag too: the reading will come.
  const unread = Math.max(0, input.running - pods.length);
  return {
    basis: "pods",
    waitingFor: [...new Set(lacking), ...(unread > 0 ? [`${unread} pod(s) not read yet`] : [])],
  };
}

/** In IssueLeaves the leaves must be the current CA's before any pod can have loaded them. */
function leavesIssued(input: CaRotationInput, phase: CaRotationPhase): boolean {
  return (
    phase !== "IssueLeaves" ||
    [input.leaves.ponger, input.leaves.pinger].every((leaf) => leaf === undefined || leaf.fromCurrentCa)
  );
}
