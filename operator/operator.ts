/**
 * The operator process: caches for PingPongPairs and their labelled children, the controller that
 * reconciles pairs, leader election, and the metrics/probe port. Only the leader starts informers
 * and writes; a standby waits on the Lease.
 */
import type { KubernetesObject, V1Pod } from "@kubernetes/client-node";
import { collectDefaultMetrics, Counter, Registry } from "prom-client";
import type { Logger } from "../lib/logger.ts";
import { type ProbeServer, type Readiness, startProbeServer } from "../lib/probe-server.ts";
import type { PingPongPair } from "./api/types.ts";
import { kind as pairKind } from "./api/types.ts";
import { registerLeaderMetric, registerPairMetrics } from "./pair-metrics.ts";
import { type CacheLookup, ChildConflictError } from "./pingpongpair/apply.ts";
import { childSelector, instanceLabel } from "./pingpongpair/names.ts";
import { createReconciler, pingRefreshMs } from "./pingpongpair/reconcile.ts";
import { PodStatusReader, slimPod } from "./health/pod-status-reader.ts";
import { WorkerPoolMinter } from "./pki/minter.ts";
import type { ClusterConnection } from "./runtime/cluster-connection.ts";
import { Controller, informerLifecycle } from "./runtime/controller.ts";
import { KubeEventRecorder } from "./runtime/events.ts";
import { Informer, type InformerEvent, withoutManagedFields } from "./runtime/informer.ts";
import { KubeApiError, KubeClient } from "./runtime/kube-client.ts";
import { LeaderElector } from "./runtime/leader-election.ts";
import { resources, type ResourceType } from "./runtime/resources.ts";
import { enqueue, type Trigger, triggerByLabel, triggerOwner, triggerSelf } from "./runtime/triggers.ts";
import { WorkQueue } from "./runtime/work-queue.ts";

export interface OperatorOptions {
  readonly connection: ClusterConnection;
  readonly logger: Logger;
  /** Namespaces to watch; every namespace when empty. */
  readonly namespaces: readonly string[];
  readonly workers: number;
  readonly image: string;
  readonly metricsAddress: string;
  readonly metricsPort: number;
  readonly leaderElection: boolean;
  /** The operator's own namespace: holds the Lease; its pods may read the workloads' metrics. */
  readonly namespace: string;
  readonly leaseName?: string;
  readonly rotationStepMs: number;
  /** How often each pair's pods' /status is read (ping health, loaded certificates); default 10 s. */
  readonly healthIntervalMs?: number;
  /** Called when leadership is lost; the process should exit (a standby takes over). */
  readonly onLostLeadership?: () => void;
}

export interface RunningOperator {
  readonly probes: ProbeServer;
  readonly client: KubeClient;
  readonly registry: Registry;
  readonly identity: string | undefined;
  /** Resolves once this process leads and its caches are synced (never, for a standby that stays one). */
  readonly leading: Promise<void>;
  stop(): Promise<void>;
}

/** The kinds a pair owns, each watched through its own informer. */
export const childTypes: readonly ResourceType[] = [
  resources.secret,
  resources.configMap,
  resources.service,
  resources.serviceAccount,
  resources.deployment,
  resources.networkPolicy,
  resources.podDisruptionBudget,
];

/**
 * The operator's informers, one per resource type and watched namespace. A pair's own events queue
 * it; its children's queue their controlling pair; its pods' queue the pair named by their instance
 * label (they are the Deployments' pods, owned by ReplicaSets).
 */
function createInformers(
  client: KubeClient,
  scopes: readonly (string | undefined)[],
  queue: WorkQueue,
  lifecycle: (resource: string) => (event: InformerEvent) => void,
) {
  const informer = <T extends KubernetesObject>(
    type: ResourceType,
    trigger: Trigger<T>,
    options: { labelSelector?: string; transform: (object: T) => T },
  ) =>
    scopes.map(
      (namespace) =>
        new Informer<T>({
          client,
          type,
          namespace,
          ...options,
          onChange: enqueue(queue, trigger),
          onLifecycle: lifecycle(type.plural),
        }),
    );
  const pairs = informer<PingPongPair>(resources.pingPongPair, triggerSelf(pairKind), {
    transform: withoutManagedFields,
  });
  const children = new Map(
    childTypes.map((type) => [
      type.kind,
      informer(type, triggerOwner(pairKind, type.kind), {
        labelSelector: childSelector,
        transform: withoutManagedFields,
      }),
    ]),
  );
  const pods = informer<V1Pod>(resources.pod, triggerByLabel(instanceLabel, "Pod"), {
    labelSelector: childSelector,
    transform: slimPod,
  });
  return { pairs, children, pods, all: [...pairs, ...[...children.values()].flat(), ...pods] };
}

/** One namespace per informer: an object is looked up in the informer for its namespace. */
function lookup<T extends KubernetesObject>(informers: readonly Informer<T>[]): CacheLookup<T> {
  return {
    get: (namespace: string, name: string) => {
      for (const informer of informers) {
        const found = informer.get(namespace, name);
        if (found) return found;
      }
      return undefined;
    },
  };
}

/** Counts the certificates the operator issues, by role (ca, ponger, pinger) and reason (RenewalDue, ...). */
function certificatesIssuedCounter(registry: Registry): (role: string, reason: string) => void {
  const issued = new Counter({
    name: "pingpong_operator_certificates_issued_total",
    help: "Certificates issued, by role (ca, ponger, pinger) and reason (Missing, RenewalDue, RotateRequested, ...).",
    labelNames: ["role", "reason"] as const,
    registers: [registry],
  });
  return (role, reason) => issued.inc({ role, reason });
}

/** The pair controller: the reconciler on the informers' caches, and the error policy. */
function createPairController(
  options: OperatorOptions,
  parts: { client: KubeClient; registry: Registry; queue: WorkQueue; reader: PodStatusReader },
  informers: ReturnType<typeof createInformers>,
  minter: WorkerPoolMinter,
): Controller {
  const { client, registry, queue, reader } = parts;
  const reconcile = createReconciler({
    client,
    caches: {
      pairs: lookup(informers.pairs),
      children: new Map([...informers.children].map(([kind, list]) => [kind, lookup(list)])),
    },
    minter,
    recorder: new KubeEventRecorder(client, options.logger),
    defaultImage: options.image,
    operatorNamespace: options.namespace,
    rotationStepMs: options.rotationStepMs,
    healthIntervalMs: reader.intervalMs,
    readings: (namespace, name) => reader.readingsOf(namespace, name),
    onIssued: certificatesIssuedCounter(registry),
  });
  return new Controller({
    name: "pingpongpair",
    logger: options.logger,
    registry,
    queue,
    informers: informers.all,
    concurrency: options.workers,
    reconcile,
    errorPolicy: (_key, error) =>
      error instanceof ChildConflictError ? { requeueAfterMs: 30_000 } : { backoff: true },
    errorLabel: (error) =>
      error instanceof ChildConflictError
        ? "child_conflict"
        : error instanceof KubeApiError
          ? `api_${error.status}`
          : "error",
  });
}

export async function startOperator(options: OperatorOptions): Promise<RunningOperator> {
  const { logger } = options;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const client = new KubeClient(options.connection, registry);
  const minter = new WorkerPoolMinter();
  const scopes = options.namespaces.length > 0 ? [...options.namespaces] : [undefined];

  // Informers feed the queue; the reconciler reads their caches; the controller runs the queue.
  const queue = new WorkQueue();
  const informers = createInformers(client, scopes, queue, informerLifecycle(registry, logger));
  const healthIntervalMs = options.healthIntervalMs ?? 10_000;
  const reader = new PodStatusReader({
    intervalMs: healthIntervalMs,
    pods: () => informers.pods.flatMap((i) => i.list()),
    onChange: (key) => queue.add(key, "ping health or loaded certificates changed"),
    refreshMs: pingRefreshMs(healthIntervalMs),
    logger,
    registry,
  });
  const controller = createPairController(options, { client, registry, queue, reader }, informers, minter);
  registerPairMetrics(registry, () => informers.pairs.flatMap((i) => i.list()));

  const elector = options.leaderElection
    ? new LeaderElector({
        client,
        namespace: options.namespace,
        name: options.leaseName ?? "pingpong-operator",
        logger,
      })
    : undefined;
  registerLeaderMetric(registry, () => (elector ? elector.isLeader : true));
  const state = { synced: false, stopping: false };
  // A standby is ready: it is healthy and waiting; only the leader has caches to sync.
  const readiness = (): Readiness =>
    state.stopping
      ? { ready: false, reason: "shutting down" }
      : state.synced || (elector !== undefined && !elector.isLeader)
        ? { ready: true }
        : { ready: false, reason: "caches are syncing" };
  const { metricsAddress: address, metricsPort: port } = options;
  const probes = await startProbeServer({ address, port, registry, logger, readiness });

  const leading = lead(options, elector, async () => {
    await controller.start();
    reader.start();
    state.synced = true;
  });
  return {
    probes,
    client,
    registry,
    identity: elector?.identity,
    leading,
    stop: async () => {
      state.stopping = true;
      await reader.stop();
      await controller.stop();
      await elector?.release();
      await minter.close();
      // The informers have aborted their watches; now the pooled connections can go.
      await client.close();
      await probes.close();
    },
  };
}

/** Waits for leadership (when elected), then starts; never resolves for a standby that stays one. */
function lead(
  options: OperatorOptions,
  elector: LeaderElector | undefined,
  start: () => Promise<void>,
): Promise<void> {
  const { logger } = options;
  const leading = (async () => {
    if (elector) {
      const won = await elector.acquire(() => {
        logger.error("Leadership lost; stopping");
        options.onLostLeadership?.();
      });
      if (!won) return new Promise<void>(() => undefined);
    }
    await start();
    logger.info(
      { namespaces: options.namespaces.length > 0 ? options.namespaces : "all", workers: options.workers },
      "Operator started",
    );
  })();
  leading.catch((error: unknown) => {
    logger.error({ err: error }, "Operator failed to start");
  });
  return leading;
}
