/**
 * Reconcile one PingPongPair: read it and its children from the caches, plan and issue the
 * certificates, apply every child the pure builders describe, and report (status, Events). It acts on
 * state, not on events, so it is safe to run any number of times: a crash halfway is finished by the
 * next run.
 *
 *   read     the pair, its Secrets and Deployments (caches), its pods' /status readings
 *   plan     resolveSpec, then the certificates (certificate-plan.ts, carried out by certificates.ts)
 *   apply    Secrets, then the workload children (children.ts), through apply.ts
 *   report   ping health, status (status.ts, written by status-writer.ts), Events (pair-events.ts)
 */
import type { Logger } from "../../lib/logger.ts";
import { errorMessage } from "../../lib/logger.ts";
import { InvalidSpecError, type ResolvedSpec, resolveSpec } from "../api/spec.ts";
import type { PingPongPair, PingPongPairStatus } from "../api/types.ts";
import { pingHealth } from "../health/ping-health.ts";
import { drillInjectedSince, injectsDrill, type PairReadings } from "../health/pod-status-reader.ts";
import type { CertificateMinter } from "../pki/minter.ts";
import type { ReconcileRequest, ReconcileResult } from "../runtime/controller.ts";
import type { EventRecorder } from "../runtime/events.ts";
import type { KubeClient } from "../runtime/kube-client.ts";
import { ChildConflictError, ChildWriter, type PairCaches, StaleCacheError } from "./apply.ts";
import { certificatesResult, type CertificatesResult, issueCertificates } from "./certificates.ts";
import { desiredWorkloadChildren } from "./children.ts";
import { type DrillJudgement, judgeDrill } from "./drill.ts";
import { childNames } from "./names.ts";
import {
  drillEvent,
  healthEvent,
  issuanceEvent,
  type PairEvent,
  problemEvent,
  rotationEvent,
} from "./pair-events.ts";
import { pingerReadings, podObservations } from "./readings.ts";
import { buildStatus, type Problem } from "./status.ts";
import { writeStatus } from "./status-writer.ts";

export { type CacheLookup, ChildConflictError, containsAll, type PairCaches } from "./apply.ts";

export interface ReconcilerContext {
  readonly client: KubeClient;
  readonly caches: PairCaches;
  readonly minter: CertificateMinter;
  readonly recorder: EventRecorder;
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

const minimumRequeueMs = 1_000;

/**
 * How often status.ping is rewritten when nothing in it changed but its last pong: every 5 minutes
 * (PingHealthy, not lastPongTime, is what turns False within 30 s of the last pong).
 */
export function pingRefreshMs(healthIntervalMs: number): number {
  return Math.max(300_000, 6 * healthIntervalMs);
}

/** Ping results count as recent for a few pings' worth, and more than one read apart. */
function recentMs(spec: ResolvedSpec, healthIntervalMs: number): number {
  return Math.max(30_000, 5 * spec.pinger.intervalMs, 3 * healthIntervalMs);
}

export function createReconciler(
  context: ReconcilerContext,
): (request: ReconcileRequest) => Promise<ReconcileResult> {
  const reconciler = new PairReconciler(context);
  return (request) => reconciler.reconcile(request);
}

class PairReconciler {
  private readonly context: ReconcilerContext;
  private readonly children: ChildWriter;
  private readonly now: () => Date;

  constructor(context: ReconcilerContext) {
    this.context = context;
    this.children = new ChildWriter(context.client, context.caches);
    this.now = context.now ?? (() => new Date());
  }

  async reconcile(request: ReconcileRequest): Promise<ReconcileResult> {
    try {
      return await this.reconcileCached(request);
    } catch (error) {
      if (!(error instanceof StaleCacheError)) throw error;
      // Another write got there first (often this operator's own, not yet in the cache). Nothing was
      // written or recorded from the stale view; the watch delivers the newer object and queues the
      // pair again; the requeue is a backstop.
      request.log.debug({ why: error.message }, "Cache behind the API server; deciding again");
      return {
        requeueAfterMs: minimumRequeueMs,
        requeueReason: "the cache was behind",
        outcome: "stale_cache",
      };
    }
  }

  private async reconcileCached({ key, log }: ReconcileRequest): Promise<ReconcileResult> {
    const [namespace = "", name = ""] = key.split("/");
    const pair = this.context.caches.pairs.get(namespace, name);
    // Deleted: the garbage collector removes the children through their ownerReferences.
    if (!pair || pair.metadata?.deletionTimestamp) return {};
    let spec: ResolvedSpec;
    try {
      spec = resolveSpec(pair, this.context.defaultImage);
    } catch (error) {
      if (!(error instanceof InvalidSpecError)) throw error;
      // Terminal until the spec changes: report it, touch nothing else.
      log.warn({ problems: error.problems }, "Invalid spec");
      const message = `${error.message}; fix the spec and apply it again`;
      await this.reportProblem(pair, log, { reason: "InvalidSpec", message });
      return { outcome: "invalid_spec" };
    }
    try {
      const readings = this.context.readings(namespace, name);
      const issued = await this.certificates(pair, spec, readings, log);
      const injecting = {
        pongers: readings.pods.filter(injectsDrill).length,
        since: drillInjectedSince(readings.pods),
      };
      const drill = judgeDrill(spec.drill, this.now(), pair.status?.drill, injecting);
      await this.workloads(pair, spec, drill);
      const next = this.status(pair, spec, readings, issued, drill);
      await writeStatus(this.context.client, pair, next);
      this.record(pair, log, drillEvent(pair.status, next));
      this.record(pair, log, healthEvent(pair.status, next));
      this.record(pair, log, rotationEvent(pair.status, next, issued.caRotationAdvanced));
      const drillDue = drill.nextCheck !== undefined && drill.nextCheck < issued.nextCheck;
      const nextCheck = drillDue ? drill.nextCheck : issued.nextCheck;
      return {
        requeueAfterMs: Math.max(minimumRequeueMs, nextCheck.getTime() - this.now().getTime()),
        requeueReason: drillDue ? "fire drill starts or ends" : "certificate renewal or CA rotation step due",
      };
    } catch (error) {
      if (error instanceof StaleCacheError) throw error;
      // Say why in status and as an event, then let the error policy retry. A failure to report
      // must not hide the failure itself.
      const problem: Problem =
        error instanceof ChildConflictError
          ? { reason: "ChildConflict", message: error.message }
          : { reason: "ReconcileError", message: errorMessage(error) };
      await this.reportProblem(pair, log, problem).catch((reportError: unknown) => {
        log.warn({ error: errorMessage(reportError) }, "Could not report the reconcile error in status");
      });
      throw error;
    }
  }

  private record(pair: PingPongPair, log: Logger, event: PairEvent | undefined): void {
    if (!event) return;
    log.info({ event: event.reason }, event.message);
    this.context.recorder.record(pair, event.type, event.reason, event.message);
  }

  private async reportProblem(pair: PingPongPair, log: Logger, problem: Problem): Promise<void> {
    await writeStatus(this.context.client, pair, buildStatus({ pair, now: this.now(), problem }));
    this.record(pair, log, problemEvent(pair.status, problem));
  }

  /** Plans and issues the certificates, and applies the Secrets that hold them. */
  private async certificates(
    pair: PingPongPair,
    spec: ResolvedSpec,
    readings: PairReadings,
    log: Logger,
  ): Promise<CertificatesResult> {
    const { name = "", namespace = "" } = pair.metadata ?? {};
    const names = childNames(name);
    const secretOf = { ca: names.caSecret, ponger: names.pongerSecret, pinger: names.pingerSecret };
    const secret = (n: string) => this.children.cached("Secret", namespace, n);
    const stored = {
      ca: secret(secretOf.ca),
      ponger: secret(secretOf.ponger),
      pinger: secret(secretOf.pinger),
    };
    const { rotationStepMs, minter } = this.context;
    const pods = podObservations(readings);
    const plan = await issueCertificates(
      { name, namespace, spec, stored, now: this.now(), rotationStepMs, pods },
      minter,
    );
    const result = certificatesResult(pair, spec, plan);
    // Each issuance is counted and recorded once its Secret is written (a stale cache stops the rest).
    for (const desired of result.secrets) {
      await this.children.ensure(pair, desired, { fromCache: true });
      for (const issued of result.issued.filter((i) => secretOf[i.role] === desired.metadata?.name)) {
        this.context.onIssued?.(issued.role, issued.reason);
        this.record(pair, log, issuanceEvent(issued));
      }
    }
    return result;
  }

  /** The workload children the spec asks for, and the removal of those it no longer does. */
  private async workloads(pair: PingPongPair, spec: ResolvedSpec, drill: DrillJudgement): Promise<void> {
    const { name = "", namespace = "" } = pair.metadata ?? {};
    const names = childNames(name);
    const { operatorNamespace } = this.context;
    for (const object of desiredWorkloadChildren({ pair, spec, operatorNamespace, drill: drill.file })) {
      await this.children.ensure(pair, object);
    }
    if (spec.ponger.replicas <= 1) await this.children.remove("PodDisruptionBudget", namespace, names.ponger);
    if (!spec.networkPolicy.enabled) {
      await this.children.remove("NetworkPolicy", namespace, names.ponger);
      await this.children.remove("NetworkPolicy", namespace, names.pinger);
    }
  }

  private status(
    pair: PingPongPair,
    spec: ResolvedSpec,
    readings: PairReadings,
    certificates: CertificatesResult,
    drill: DrillJudgement,
  ): PingPongPairStatus {
    const { name = "", namespace = "" } = pair.metadata ?? {};
    const names = childNames(name);
    const health = pingHealth({
      readings: pingerReadings(readings),
      runningPingers: readings.running.pinger,
      threshold: spec.pinger.successThreshold,
      recentMs: recentMs(spec, this.context.healthIntervalMs),
      now: this.now(),
    });
    return buildStatus({
      pair,
      now: this.now(),
      spec,
      certificates,
      deployments: {
        ponger: this.children.cached("Deployment", namespace, names.ponger),
        pinger: this.children.cached("Deployment", namespace, names.pinger),
      },
      health: { value: health, refreshMs: pingRefreshMs(this.context.healthIntervalMs) },
      drill: drill.status,
    });
  }
}
