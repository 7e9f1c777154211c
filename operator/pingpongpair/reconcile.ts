/**
 * Reconcile one PingPongPair: read it and its children from the caches, decide the certificates,
 * build every child with the pure builders, write what differs with server-side apply, and write the
 * status when it changed. It acts on state, not on events, so it is safe to run any number of times:
 * a crash halfway is finished by the next run.
 */
import { isDeepStrictEqual } from "node:util";
import type { KubernetesObject } from "@kubernetes/client-node";
import { errorMessage, type Logger } from "../../lib/logger.ts";
import { InvalidSpecError, resolveSpec } from "../api/spec.ts";
import {
  apiVersion,
  conditionTypes,
  kind,
  type PingPongPair,
  type PingPongPairStatus,
} from "../api/types.ts";
import type { CertificateMinter } from "../pki/minter.ts";
import type { ReconcileResult } from "../runtime/controller.ts";
import type { EventRecorder } from "../runtime/events.ts";
import type { Informer } from "../runtime/informer.ts";
import type { KubeClient } from "../runtime/kube-client.ts";
import { resourceTypeOf } from "../runtime/resources.ts";
import { reconcileCertificates } from "./certificates.ts";
import { desiredWorkloadChildren } from "./children.ts";
import { childNames } from "./names.ts";
import { type PingerReading, type PingerReport, pingHealth } from "../health/ping-health.ts";
import { loadedTls, type PairReadings, type PodReading } from "../health/pod-status-reader.ts";
import type { PodObservation } from "./ca-rotation.ts";
import { buildStatus, type Problem } from "./status.ts";

/** A child exists under our name but belongs to someone else: we will not overwrite it. */
export class ChildConflictError extends Error {
  override readonly name = "ChildConflictError";
}

/** Reads from informer caches: the reconciler only looks objects up. */
export type CacheLookup<T extends KubernetesObject> = Pick<Informer<T>, "get">;

export interface PairCaches {
  readonly pairs: CacheLookup<PingPongPair>;
  /** Child caches by kind ("Secret", "Deployment", ...). */
  readonly children: ReadonlyMap<string, CacheLookup<KubernetesObject>>;
}

export interface ReconcilerContext {
  readonly client: KubeClient;
  readonly caches: PairCaches;
  readonly minter: CertificateMinter;
  readonly recorder: EventRecorder;
  readonly logger: Logger;
  readonly defaultImage: string;
  readonly operatorNamespace: string;
  readonly rotationStepMs: number;
  readonly healthIntervalMs: number;
  /** The latest /status readings of a pair's running pods (health/pod-status-reader.ts). */
  readonly readings: (namespace: string, name: string) => PairReadings;
  /** Told of every certificate issued (counted in pingpong_operator_certificates_issued_total). */
  readonly onIssued?: (role: string, reason: string) => void;
  readonly now?: () => Date;
}

/** Whether every field of `desired` is present with the same value in `live` (arrays element-wise). */
export function containsAll(live: unknown, desired: unknown): boolean {
  if (desired === null || typeof desired !== "object") return live === desired;
  if (Array.isArray(desired)) {
    return (
      Array.isArray(live) &&
      live.length === desired.length &&
      desired.every((d, i) => containsAll(live[i], d))
    );
  }
  if (live === null || typeof live !== "object" || Array.isArray(live)) return false;
  const record = live as Record<string, unknown>;
  return Object.entries(desired).every(
    ([key, value]) => value === undefined || containsAll(record[key], value),
  );
}

const minimumRequeueMs = 1_000;

/**
 * How often status.ping is rewritten when nothing in it changed but its last pong: every 5 minutes
 * (PingHealthy, not lastPongTime, is what turns False within 30 s of the last pong).
 */
export function pingRefreshMs(healthIntervalMs: number): number {
  return Math.max(300_000, 6 * healthIntervalMs);
}

/** What a pod reported having loaded, as the CA rotation needs it. */
function observation(reading: PodReading): PodObservation {
  const base = { pod: reading.pod, component: reading.component };
  if (reading.error !== undefined) return { ...base, error: reading.error };
  const tls = loadedTls(reading);
  if (!tls) return { ...base, error: "its /status reports no TLS material" };
  return {
    ...base,
    trust: tls.trustBundle.map((c) => c.sha256Fingerprint),
    leaf: tls.certificate?.sha256Fingerprint,
  };
}

/** A pinger pod's reading as health needs it; a /status without a ping window is an error. */
function pingerReading(reading: PodReading): PingerReading {
  const window = reading.status?.window;
  if (reading.error !== undefined || typeof window !== "object" || window === null) {
    return { pod: reading.pod, at: reading.at, error: reading.error ?? "its /status has no ping window" };
  }
  return { pod: reading.pod, at: reading.at, report: reading.status as unknown as PingerReport };
}

export function createReconciler(context: ReconcilerContext): (key: string) => Promise<ReconcileResult> {
  const { client, caches, minter, recorder, logger } = context;
  const now = context.now ?? (() => new Date());
  const child = (kindName: string, namespace: string, name: string): KubernetesObject | undefined =>
    caches.children.get(kindName)?.get(namespace, name);

  /** Applies `desired` unless the cached child already has it; refuses to take over a stranger's object. */
  async function ensure(pair: PingPongPair, desired: KubernetesObject): Promise<void> {
    const namespace = desired.metadata?.namespace ?? "";
    const name = desired.metadata?.name ?? "";
    const cached = child(desired.kind ?? "", namespace, name);
    if (cached && containsAll(cached, desired)) return;
    if (!cached) {
      // Not in our cache (which holds only objects we label): make sure no one else's object has the name.
      const existing = await client.get(resourceTypeOf(desired.apiVersion, desired.kind), namespace, name);
      const ownerUid = existing?.metadata?.ownerReferences?.find((o) => o.controller)?.uid;
      if (existing && ownerUid !== pair.metadata?.uid) {
        throw new ChildConflictError(
          `${desired.kind ?? "object"} ${namespace}/${name} already exists and is not managed by this PingPongPair; delete or rename it`,
        );
      }
    }
    await client.apply(desired);
  }

  async function remove(kindName: string, namespace: string, name: string): Promise<void> {
    const cached = child(kindName, namespace, name);
    if (!cached) return;
    const type = resourceTypeOf(cached.apiVersion, cached.kind);
    await client.delete(type, namespace, name);
  }

  async function writeStatus(pair: PingPongPair, status: PingPongPairStatus): Promise<void> {
    // Structural comparison: the API server returns fields in its own order. The JSON round trip
    // drops undefined fields, which the server never stores.
    if (isDeepStrictEqual(JSON.parse(JSON.stringify(status)), pair.status ?? {})) return;
    await client.apply(
      {
        apiVersion,
        kind,
        metadata: { name: pair.metadata?.name ?? "", namespace: pair.metadata?.namespace ?? "" },
        status,
      },
      "status",
    );
  }

  async function reportProblem(pair: PingPongPair, problem: Problem): Promise<void> {
    const status = buildStatus({ pair, now: now(), problem });
    const alreadyReported = pair.status?.conditions?.some(
      (c) => c.type === "Ready" && c.reason === problem.reason && c.message === problem.message,
    );
    await writeStatus(pair, status);
    if (!alreadyReported) recorder.record(pair, "Warning", problem.reason, problem.message);
  }

  /** An Event for each CA rotation step, and one when a step waits past its deadline. */
  function recordRotation(pair: PingPongPair, status: PingPongPairStatus, advanced: boolean): void {
    const before = pair.status?.conditions?.find((c) => c.type === conditionTypes.certificatesReady);
    const after = status.conditions?.find((c) => c.type === conditionTypes.certificatesReady);
    if (!after) return;
    if (after.reason === "RotationStuck" && before?.reason !== "RotationStuck") {
      recorder.record(pair, "Warning", "RotationStuck", after.message);
    } else if (
      advanced &&
      (after.reason === "RotatingCA" || before?.reason === "RotatingCA" || before?.reason === "RotationStuck")
    ) {
      recorder.record(
        pair,
        "Normal",
        after.reason === "RotatingCA" ? "CARotationStep" : "CARotationDone",
        after.message,
      );
    }
  }

  /** One Event when PingHealthy changes status, none for each read. */
  function recordHealthTransition(pair: PingPongPair, status: PingPongPairStatus): void {
    const before = pair.status?.conditions?.find((c) => c.type === conditionTypes.pingHealthy);
    const after = status.conditions?.find((c) => c.type === conditionTypes.pingHealthy);
    if (!after || before?.status === after.status) return;
    if (!before && after.status === "Unknown") return;
    recorder.record(
      pair,
      after.status === "False" ? "Warning" : "Normal",
      after.reason,
      `ping health is ${after.status}: ${after.message}`,
    );
  }

  return async function reconcile(key: string): Promise<ReconcileResult> {
    const [namespace = "", name = ""] = key.split("/");
    const pair = caches.pairs.get(namespace, name);
    // Deleted: the garbage collector removes the children through their ownerReferences.
    if (!pair || pair.metadata?.deletionTimestamp) return {};
    const log = logger.child({ pair: key });

    let spec;
    try {
      spec = resolveSpec(pair, context.defaultImage);
    } catch (error) {
      if (!(error instanceof InvalidSpecError)) throw error;
      // Terminal until the spec changes: report it, touch nothing else.
      log.warn({ problems: error.problems }, "Invalid spec");
      await reportProblem(pair, {
        reason: "InvalidSpec",
        message: `${error.message}; fix the spec and apply it again`,
      });
      return { outcome: "invalid_spec" };
    }

    const names = childNames(name);
    const secret = (n: string) => child("Secret", namespace, n);
    try {
      const started = now();
      const readings = context.readings(namespace, name);
      const certificates = await reconcileCertificates({
        pair,
        spec,
        stored: {
          ca: secret(names.caSecret),
          ponger: secret(names.pongerSecret),
          pinger: secret(names.pingerSecret),
        },
        minter,
        now: started,
        rotationStepMs: context.rotationStepMs,
        pods: {
          observations: readings.pods.map(observation),
          running: readings.running.ponger + readings.running.pinger,
        },
      });
      for (const desired of certificates.secrets) await ensure(pair, desired);
      for (const issued of certificates.issued) {
        const what = issued.role === "ca" ? "CA" : `${issued.role} certificate`;
        log.info({ role: issued.role, reason: issued.reason, serial: issued.serial }, `Issued ${what}`);
        context.onIssued?.(issued.role, issued.reason);
        recorder.record(
          pair,
          "Normal",
          issued.role === "ca" ? "IssuedCA" : "IssuedCertificate",
          `issued the ${what} (serial ${issued.serial}): ${issued.message}`,
        );
      }

      const desired = desiredWorkloadChildren({ pair, spec, operatorNamespace: context.operatorNamespace });
      for (const object of desired) await ensure(pair, object);
      // What the spec no longer asks for.
      if (spec.ponger.replicas <= 1) await remove("PodDisruptionBudget", namespace, names.ponger);
      if (!spec.networkPolicy.enabled) {
        await remove("NetworkPolicy", namespace, names.ponger);
        await remove("NetworkPolicy", namespace, names.pinger);
      }

      const health = pingHealth({
        readings: readings.pods.filter((r) => r.component === "pinger").map(pingerReading),
        runningPingers: readings.running.pinger,
        threshold: spec.pinger.successThreshold,
        // Recent: a few pings' worth, and more than one read apart.
        recentMs: Math.max(30_000, 5 * spec.pinger.intervalMs, 3 * context.healthIntervalMs),
        now: now(),
      });
      const status = buildStatus({
        pair,
        now: now(),
        spec,
        certificates,
        deployments: {
          ponger: child("Deployment", namespace, names.ponger),
          pinger: child("Deployment", namespace, names.pinger),
        },
        health: { value: health, refreshMs: pingRefreshMs(context.healthIntervalMs) },
      });
      await writeStatus(pair, status);
      recordHealthTransition(pair, status);
      recordRotation(pair, status, certificates.caRotationAdvanced);
      return {
        requeueAfterMs: Math.max(minimumRequeueMs, certificates.nextCheck.getTime() - now().getTime()),
      };
    } catch (error) {
      // Say why in status and as an event, then let the error policy retry. A failure to report
      // must not hide the failure itself.
      const problem: Problem =
        error instanceof ChildConflictError
          ? { reason: "ChildConflict", message: error.message }
          : { reason: "ReconcileError", message: errorMessage(error) };
      await reportProblem(pair, problem).catch((reportError: unknown) => {
        log.warn({ error: errorMessage(reportError) }, "Could not report the reconcile error in status");
      });
      throw error;
    }
  };
}
