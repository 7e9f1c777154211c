/**
 * Reads every running workload pod's /status (pod IP, the `metrics` container port) with undici,
 * once per interval per pair, and tells the controller which pairs to look at again.
 *
 * - Per pair, not per pod: a pair's pods are read together, so one read wakes one reconcile.
 * - Jitter: each pair's next read is the interval +/- 10%, and a new pair's first read is spread
 *   over a second, so 1000 pairs do not all fire on the same tick.
 * - Prompt: a pair is read at the next tick (within a second) when one of its pods turns Ready (a
 *   pinger is Ready once it has had a pong): what a user waits for after applying a pair is not
 *   held back to the next interval. That is one read per pod start, none at steady state.
 * - Bounded: at most `concurrency` reads at once, each with a short timeout and a capped body.
 * - Quiet: a pair is woken only when what its readings mean changed (a failure, a certificate or
 *   trust bundle loaded, a pod unreachable, a pong a refresh period newer), not on every read.
 */
import type { V1Pod } from "@kubernetes/client-node";
import { Agent, request } from "undici";
import { Counter, type Registry } from "prom-client";
import { errorMessage, type Logger } from "../../lib/logger.ts";
import { latencyMoved, percent } from "./ping-health.ts";

export type WorkloadComponent = "ponger" | "pinger";

/** What every workload reports about the TLS material it has loaded (workloads/tls-reloader.ts). */
export interface LoadedTls {
  readonly certificate: { readonly sha256Fingerprint: string } | null;
  readonly trustBundle: readonly { readonly sha256Fingerprint: string }[];
}

export interface PodReading {
  readonly pod: string;
  readonly component: WorkloadComponent;
  readonly at: Date;
  /** The parsed /status, when it could be read. */
  readonly status?: Record<string, unknown>;
  readonly error?: string;
}

export interface PairReadings {
  /** Latest readings of the pair's running pods (pods without an IP are not running yet). */
  readonly pods: readonly PodReading[];
  readonly running: { readonly ponger: number; readonly pinger: number };
}

export interface PodStatusReaderOptions {
  readonly intervalMs: number;
  /** Every pod the operator's cache holds (labelled as a pair's child). */
  readonly pods: () => Iterable<V1Pod>;
  /** Called with a pair's key ("namespace/name") when its readings changed meaning. */
  readonly onChange: (pairKey: string) => void;
  readonly logger: Logger;
  readonly concurrency?: number;
  readonly timeoutMs?: number;
  /** How often an unchanged healthy pair is still refreshed (its last pong). */
  readonly refreshMs?: number;
  readonly random?: () => number;
  /** Where to count reads (pingpong_operator_pod_status_reads_total). */
  readonly registry?: Registry;
}

const componentLabel = "app.kubernetes.io/component";
const instanceLabel = "app.kubernetes.io/instance";
const maxStatusBytes = 256 * 1024;

/** The pair a workload pod belongs to, its component, and where its /status is; undefined if not running. */
export function podTarget(
  pod: V1Pod,
): { pairKey: string; component: WorkloadComponent; url: string; ready: boolean } | undefined {
  const component = pod.metadata?.labels?.[componentLabel];
  const pair = pod.metadata?.labels?.[instanceLabel];
  if ((component !== "ponger" && component !== "pinger") || !pair) return undefined;
  const ip = pod.status?.podIP;
  if (!ip || pod.status?.phase !== "Running" || pod.metadata?.deletionTimestamp) return undefined;
  const port = pod.spec?.containers
    .flatMap((c) => c.ports ?? [])
    .find((p) => p.name === "metrics")?.containerPort;
  if (!port) return undefined;
  const host = ip.includes(":") ? `[${ip}]` : ip;
  return {
    pairKey: `${pod.metadata?.namespace ?? ""}/${pair}`,
    component,
    url: `http://${host}:${port}/status`,
    ready: pod.status.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true,
  };
}

/**
 * What the operator keeps of a pod: where it runs, whether it is Ready, and what it belongs to. Pods
 * are the most numerous objects it caches (two or more per pair), so the rest is dropped on arrival.
 */
export function slimPod(pod: V1Pod): V1Pod {
  const { name, namespace, uid, resourceVersion, labels, deletionTimestamp } = pod.metadata ?? {};
  const ready = pod.status?.conditions?.find((c) => c.type === "Ready");
  return {
    apiVersion: pod.apiVersion,
    kind: pod.kind,
    metadata: { name, namespace, uid, resourceVersion, labels, deletionTimestamp },
    spec: {
      containers: (pod.spec?.containers ?? []).map((c) => ({
        name: c.name,
        ...(c.ports ? { ports: c.ports.map((p) => ({ name: p.name, containerPort: p.containerPort })) } : {}),
      })),
    },
    status: {
      phase: pod.status?.phase,
      podIP: pod.status?.podIP,
      ...(ready ? { conditions: [{ type: "Ready", status: ready.status }] } : {}),
    },
  };
}

/** The loaded TLS material a pod reported, if it did. */
export function loadedTls(reading: PodReading): LoadedTls | undefined {
  const tls = reading.status?.tls as Partial<LoadedTls> | null | undefined;
  if (!tls || typeof tls !== "object") return undefined;
  return {
    certificate: tls.certificate ?? null,
    trustBundle: Array.isArray(tls.trustBundle) ? tls.trustBundle : [],
  };
}

/** What one pod's reading says, as far as the operator acts on it. */
export interface PodMeaning {
  readonly unreadable: boolean;
  readonly tls: string;
  readonly failed?: number | undefined;
  readonly success?: string | undefined;
  readonly p99?: number | null | undefined;
  readonly ponged?: string | undefined;
  readonly lastPong?: number | undefined;
  /**
   * Pings in the window while it is still filling (nothing has left it yet: the pinger is younger
   * than its window), so that status follows a starting pinger instead of freezing its first read.
   */
  readonly filling?: number | undefined;
  /** A ponger injecting a fire drill's faults now. */
  readonly drilling?: boolean | undefined;
}

/** Whether a ponger's /status says it injects a fire drill's faults now. */
export function injectsDrill(reading: PodReading): boolean {
  const drill = reading.status?.drill as { active?: unknown } | null | undefined;
  return reading.component === "ponger" && drill?.active === true;
}

/** Since when the pongers that inject a drill have (the earliest they report), if any does. */
export function drillInjectedSince(readings: readonly PodReading[]): string | undefined {
  const times = readings.filter(injectsDrill).flatMap((r) => {
    const since = (r.status?.drill as { since?: unknown }).since;
    return typeof since === "string" && !Number.isNaN(Date.parse(since)) ? [Date.parse(since)] : [];
  });
  return times.length > 0 ? new Date(Math.min(...times)).toISOString() : undefined;
}

export function podMeaning(reading: PodReading): PodMeaning {
  if (reading.error !== undefined) return { unreadable: true, tls: "" };
  const tls = loadedTls(reading);
  const meaning = {
    unreadable: false,
    tls: JSON.stringify([
      tls?.certificate?.sha256Fingerprint ?? null,
      tls?.trustBundle.map((c) => c.sha256Fingerprint),
    ]),
  };
  if (reading.component !== "pinger") return { ...meaning, drilling: injectsDrill(reading) };
  const window = reading.status?.window as
    { failed?: number; sent?: number; succeeded?: number; latencyP99Ms?: number | null } | undefined;
  const lastPong =
    typeof reading.status?.lastPongTime === "string" ? Date.parse(reading.status.lastPongTime) : 0;
  const filling = typeof reading.status?.sent === "number" && reading.status.sent === window?.sent;
  return {
    ...meaning,
    failed: window?.failed,
    success: window?.sent ? percent((window.succeeded ?? 0) / window.sent) : "-",
    p99: window?.latencyP99Ms,
    ponged: Object.keys((reading.status?.pongsByPod as Record<string, number> | undefined) ?? {})
      .sort()
      .join(","),
    lastPong,
    filling: filling ? window.sent : undefined,
  };
}

/**
 * Whether a pair's readings say something new since `before` (what was last acted on): a pod came
 * or went or became unreadable, loaded other certificates, a ping failed, the success percentage
 * or the set of ponger pods changed, P99 doubled or halved, the last pong is `refreshMs` newer,
 * a starting pinger's window (still filling) holds more pings, or a ponger started or stopped
 * injecting a fire drill.
 * Compared with what was acted on, not with the previous read, so slow drift still counts and
 * noise around a threshold does not.
 */
export function readingsChanged(
  before: ReadonlyMap<string, PodMeaning>,
  after: ReadonlyMap<string, PodMeaning>,
  refreshMs: number,
): boolean {
  if (before.size !== after.size) return true;
  for (const [pod, next] of after) {
    const previous = before.get(pod);
    if (!previous) return true;
    if (previous.unreadable !== next.unreadable || previous.tls !== next.tls) return true;
    if (previous.drilling !== next.drilling) return true;
    if (
      previous.failed !== next.failed ||
      previous.success !== next.success ||
      previous.ponged !== next.ponged ||
      previous.filling !== next.filling
    )
      return true;
    if (latencyMoved(previous.p99, next.p99)) return true;
    if ((next.lastPong ?? 0) - (previous.lastPong ?? 0) >= refreshMs) return true;
  }
  return false;
}

interface PairState {
  nextReadAt: number;
  /** What the pair's readings said when the controller was last told. */
  notified: Map<string, PodMeaning>;
  readings: Map<string, PodReading>;
  /** Its running pods, as of the last tick. */
  pods: { name: string; component: WorkloadComponent; url: string }[];
  /** Those of them that were Ready at the last tick. */
  ready: Set<string>;
}

export class PodStatusReader {
  private readonly options: PodStatusReaderOptions;
  private readonly agent: Agent;
  private readonly pairs = new Map<string, PairState>();
  private timer: NodeJS.Timeout | undefined;
  private inFlight = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly reading = new Set<string>();
  private readonly reads: Counter<"component" | "result"> | undefined;
  private stopped = false;
  /** How often each pair's pods are read. */
  readonly intervalMs: number;

  constructor(options: PodStatusReaderOptions) {
    this.options = options;
    this.intervalMs = options.intervalMs;
    this.reads =
      options.registry &&
      new Counter({
        name: "pingpong_operator_pod_status_reads_total",
        help: "Reads of the pair pods' /status, by component and result (ok, error).",
        labelNames: ["component", "result"] as const,
        registers: [options.registry],
      });
    const timeoutMs = options.timeoutMs ?? 2_000;
    this.agent = new Agent({
      connect: { timeout: timeoutMs },
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      // A pod is read once per interval: keeping its connection open would only hold sockets.
      keepAliveTimeout: 1,
      connections: 1,
      maxResponseSize: maxStatusBytes,
    });
  }

  start(): void {
    const tickMs = Math.max(100, Math.min(1_000, this.options.intervalMs / 4));
    this.timer = setInterval(() => this.tick(), tickMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.agent.close();
  }

  /** The latest readings of a pair's running pods (as of the last tick: at most one tick old). */
  readingsOf(namespace: string, pair: string): PairReadings {
    const state = this.pairs.get(`${namespace}/${pair}`);
    const running = { ponger: 0, pinger: 0 };
    const pods: PodReading[] = [];
    for (const pod of state?.pods ?? []) {
      running[pod.component]++;
      const reading = state?.readings.get(pod.name);
      if (reading) pods.push(reading);
    }
    return { pods, running };
  }

  private tick(): void {
    const now = Date.now();
    const random = this.options.random ?? Math.random;
    const byPair = new Map<
      string,
      { pods: { name: string; component: WorkloadComponent; url: string }[]; ready: Set<string> }
    >();
    for (const pod of this.options.pods()) {
      const target = podTarget(pod);
      if (!target) continue;
      const pair = byPair.get(target.pairKey) ?? { pods: [], ready: new Set<string>() };
      const name = pod.metadata?.name ?? "";
      pair.pods.push({ name, component: target.component, url: target.url });
      if (target.ready) pair.ready.add(name);
      byPair.set(target.pairKey, pair);
    }
    for (const key of this.pairs.keys()) if (!byPair.has(key)) this.pairs.delete(key);
    for (const [key, { pods, ready }] of byPair) {
      let state = this.pairs.get(key);
      if (!state) {
        state = {
          nextReadAt: now + random() * 1_000,
          notified: new Map(),
          readings: new Map(),
          pods,
          ready,
        };
        this.pairs.set(key, state);
      }
      for (const name of ready) {
        if (state.ready.has(name)) continue;
        state.nextReadAt = Math.min(state.nextReadAt, now);
        break;
      }
      state.pods = pods;
      state.ready = ready;
      if (state.nextReadAt > now || this.reading.has(key)) continue;
      state.nextReadAt = now + this.options.intervalMs * (0.9 + 0.2 * random());
      void this.readPair(key, state, pods);
    }
  }

  private async readPair(
    key: string,
    state: PairState,
    pods: readonly { name: string; component: WorkloadComponent; url: string }[],
  ): Promise<void> {
    this.reading.add(key);
    try {
      const readings = await Promise.all(pods.map((pod) => this.limited(() => this.readPod(pod))));
      if (this.stopped) return;
      for (const r of readings)
        this.reads?.inc({ component: r.component, result: r.error === undefined ? "ok" : "error" });
      state.readings = new Map(readings.map((r) => [r.pod, r]));
      const meaning = new Map(readings.map((r) => [r.pod, podMeaning(r)]));
      if (readingsChanged(state.notified, meaning, this.options.refreshMs ?? 300_000)) {
        state.notified = meaning;
        this.options.onChange(key);
      }
    } finally {
      this.reading.delete(key);
    }
  }

  private async readPod(pod: {
    name: string;
    component: WorkloadComponent;
    url: string;
  }): Promise<PodReading> {
    const at = new Date();
    try {
      const response = await request(pod.url, { dispatcher: this.agent });
      if (response.statusCode !== 200) {
        await response.body.dump();
        return {
          pod: pod.name,
          component: pod.component,
          at,
          error: `GET /status answered ${response.statusCode}`,
        };
      }
      const status: unknown = await response.body.json();
      if (status === null || typeof status !== "object" || Array.isArray(status))
        throw new Error("/status is not a JSON object");
      return { pod: pod.name, component: pod.component, at, status: status as Record<string, unknown> };
    } catch (error) {
      this.options.logger.debug(
        { pod: pod.name, error: errorMessage(error) },
        "Could not read a pod's /status",
      );
      return { pod: pod.name, component: pod.component, at, error: errorMessage(error) };
    }
  }

  private async limited<T>(work: () => Promise<T>): Promise<T> {
    const concurrency = this.options.concurrency ?? 16;
    while (this.inFlight >= concurrency) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.inFlight++;
    try {
      return await work();
    } finally {
      this.inFlight--;
      this.waiting.shift()?.();
    }
  }
}
