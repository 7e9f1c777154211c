/**
 * The controller loop: informer events become keys in the work queue ("namespace/name" of the
 * primary object); workers take keys and call reconcile, one at a time per key, several keys at once.
 * Reconcile reads state, not events ("level-based"). Its answer says when to look again; a thrown
 * error goes to the error policy, which by default backs the key off exponentially. Each reconcile
 * gets an ID and the reason it runs (as controller-runtime's reconcileID and kube-runtime's
 * ReconcileReason), on a logger that carries both.
 */
import { randomBytes } from "node:crypto";
import type { KubernetesObject } from "@kubernetes/client-node";
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { Logger } from "../../lib/logger.ts";
import { errorMessage } from "../../lib/logger.ts";
import type { Informer, InformerEvent } from "./informer.ts";
import { WorkQueue } from "./work-queue.ts";

export interface ReconcileResult {
  /** Look at this key again after this long, even if nothing changes (e.g. at certificate renewal). */
  readonly requeueAfterMs?: number;
  /**
   * The reconcile metric's result label when the reconcile did its job but found the object unusable
   * (e.g. invalid_spec: reported, and not retried until it changes); "success" when unset.
   */
  readonly outcome?: string;
  /** Why the requeue is asked for, in the next reconcile's log ("renewal or rotation check"). */
  readonly requeueReason?: string;
}

/** One run of reconcile: the key, and what to tell its log. */
export interface ReconcileRequest {
  readonly key: string;
  /** Unique to this run; every line it logs carries it. */
  readonly id: string;
  /** What queued the key: an informer event, a requeue, a retry after an error. */
  readonly reason: string;
  /** The controller's logger with the key, the ID and the reason. */
  readonly log: Logger;
}

/** What to do after a failed reconcile: back off, or look again at a fixed time. */
export type ErrorAction = { readonly backoff: true } | { readonly requeueAfterMs: number };

export interface ControllerOptions {
  readonly name: string;
  readonly logger: Logger;
  readonly registry: Registry;
  /** The queue to work through; the informers feeding it are created with it. A new one when unset. */
  readonly queue?: WorkQueue;
  /** Started by start(), which waits for their caches before the first reconcile. */
  readonly informers?: readonly Informer<KubernetesObject>[];
  readonly reconcile: (request: ReconcileRequest) => Promise<ReconcileResult>;
  readonly errorPolicy?: (key: string, error: unknown) => ErrorAction;
  /** A label for the reconcile-error metric, e.g. the error's kind. */
  readonly errorLabel?: (error: unknown) => string;
  readonly concurrency?: number;
}

/** Logs and counts informers' lifecycles; `informerLifecycle(...)(resource)` is an onLifecycle. */
export function informerLifecycle(
  registry: Registry,
  logger: Logger,
): (resource: string) => (event: InformerEvent) => void {
  const events = new Counter({
    name: "pingpong_operator_informer_events_total",
    help: "Informer lifecycle events (listed, watching, gone, error) by resource.",
    labelNames: ["resource", "event"] as const,
    registers: [registry],
  });
  return (resource) => {
    const log = logger.child({ resource });
    return (event) => {
      events.inc({ resource, event: event.type });
      if (event.type === "error") log.warn(event, "Informer failed; retrying");
      else if (event.type === "gone") log.info(event, "Watch too old (410 Gone); listing again");
      else log.debug(event, `Informer ${event.type}`);
    };
  };
}

export class Controller {
  readonly queue: WorkQueue;
  private readonly options: ControllerOptions;
  private readonly workers: Promise<void>[] = [];
  private readonly informers: Informer<KubernetesObject>[] = [];
  private readonly reconciles: Counter<"controller" | "result">;
  private readonly durations: Histogram<"controller">;

  constructor(options: ControllerOptions) {
    this.options = options;
    this.queue = options.queue ?? new WorkQueue();
    this.informers.push(...(options.informers ?? []));
    const { registry } = options;
    this.reconciles = new Counter({
      name: "pingpong_operator_reconcile_total",
      help: "Reconciles by result: success, or the kind of error.",
      labelNames: ["controller", "result"] as const,
      registers: [registry],
    });
    this.durations = new Histogram({
      name: "pingpong_operator_reconcile_duration_seconds",
      help: "Time spent in one reconcile.",
      labelNames: ["controller"] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
    const queue = this.queue;
    new Gauge({
      name: "pingpong_operator_workqueue_depth",
      help: "Keys waiting in the work queue.",
      registers: [registry],
      collect() {
        this.set(queue.depth);
      },
    });
  }

  watch(informer: Informer<KubernetesObject>): void {
    this.informers.push(informer);
  }

  /** Starts the informers, waits for their caches, then starts the workers. */
  async start(): Promise<void> {
    for (const informer of this.informers) informer.start();
    await Promise.all(this.informers.map((i) => i.synced));
    this.options.logger.info({ informers: this.informers.map((i) => i.type.plural) }, "Caches synced");
    const concurrency = this.options.concurrency ?? 4;
    for (let i = 0; i < concurrency; i++) this.workers.push(this.work());
  }

  /** Stops taking keys, lets running reconciles finish, stops the informers. */
  async stop(): Promise<void> {
    this.queue.shutDown();
    await Promise.all(this.workers);
    for (const informer of this.informers) informer.stop();
  }

  private async work(): Promise<void> {
    const { name, logger } = this.options;
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      const stopTimer = this.durations.startTimer({ controller: name });
      const id = randomBytes(4).toString("hex");
      const reason = this.queue.reasonOf(key);
      const log = logger.child({ key, reconcileID: id, reason });
      try {
        log.debug("Reconciling");
        const result = await this.options.reconcile({ key, id, reason, log });
        this.reconciles.inc({ controller: name, result: result.outcome ?? "success" });
        this.queue.forget(key);
        if (result.requeueAfterMs !== undefined) {
          this.queue.addAfter(key, result.requeueAfterMs, result.requeueReason);
        }
      } catch (error) {
        const label = this.options.errorLabel?.(error) ?? "error";
        this.reconciles.inc({ controller: name, result: label });
        const action = this.options.errorPolicy?.(key, error) ?? { backoff: true };
        if ("backoff" in action) {
          const delay = this.queue.addRateLimited(key);
          log.warn(
            { error: errorMessage(error), retryInMs: delay },
            "Reconcile failed; retrying with backoff",
          );
        } else {
          this.queue.addAfter(key, action.requeueAfterMs, "retry after an error");
          log.warn({ error: errorMessage(error), retryInMs: action.requeueAfterMs }, "Reconcile failed");
        }
      } finally {
        stopTimer();
        this.queue.done(key);
      }
    }
  }
}
