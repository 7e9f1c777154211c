/**
 * The pinger: every interval, one GET to the ponger with undici (TLS or mutual TLS), with a deadline.
 * Each result goes to PingResults (status, readiness, metrics, log); certificates are swapped in by
 * building a new connection pool: new pings use it at once, pings in flight finish on the old one,
 * which is closed once their deadline has passed.
 *
 * A pinger usually starts next to its first ponger, before the ponger's Service has a ready endpoint
 * that kube-proxy has programmed and before the node's NetworkPolicy engine admits the new pod: for
 * a second or a few, a connection is refused or its SYN is dropped (and retried by TCP a second
 * later). So it starts by waiting until the ponger is reachable: an attempt every 250 ms, each on a
 * connection of its own, abandoned with it after 750 ms (before TCP's first retransmission), until
 * one connects and is answered; that answer is its first ping. Attempts that could not connect are not pings: they are counted on
 * their own (/status `startup`, `ping_startup_attempts_total`). The wait ends at the first answer
 * of any kind (a TLS or HTTP failure is a failed ping: the ponger was reached) or after
 * `startupGrace` (30 s), after which every failure counts.
 */
import type { Pool } from "undici";
import type { Logger } from "../../lib/logger.ts";
import { type ProbeServer, startProbeServer } from "../../lib/probe-server.ts";
import { pongBody } from "../protocol.ts";
import { describeMaterial, type TlsMaterial } from "../tls-files.ts";
import { TlsReloader } from "../tls-reloader.ts";
import type { PingerConfig } from "./config.ts";
import { classifyError, type PingFailure } from "./failure.ts";
import { type PingAnswer, pongerPool, sendPing } from "./ping-client.ts";
import { type PingerStatus, PingResults } from "./ping-results.ts";

export type { PingerStatus } from "./ping-results.ts";
export { pingsPerConnection } from "./ping-client.ts";

export interface Pinger {
  readonly probes: ProbeServer;
  /** The same JSON /status serves. */
  status(): PingerStatus;
  close(): Promise<void>;
}

/** What an answer means: undefined for a pong, otherwise why it is not one. */
export function judgeAnswer(answer: PingAnswer): PingFailure | undefined {
  const pod = answer.pod ?? "unknown";
  if (answer.status !== 200) {
    return {
      reason: "http_status",
      message: `HTTP ${answer.status} from ${pod}: ${answer.body.slice(0, 200)}`,
    };
  }
  if (answer.body !== pongBody) {
    return {
      reason: "bad_body",
      message: `expected "pong", got ${JSON.stringify(answer.body.slice(0, 50))}`,
    };
  }
  return undefined;
}

/** The connections to the ponger, rebuilt whenever the TLS files change. */
class PongerConnections {
  pool: Pool;
  readonly reloader: TlsReloader | undefined;
  private material: TlsMaterial | undefined;
  private readonly target: URL;

  constructor(config: PingerConfig, target: URL, logger: Logger) {
    this.target = target;
    const paths = {
      certificate: config.ponger.clientCertificate,
      privateKey: config.ponger.clientPrivateKey,
      trustBundle: config.ponger.acceptCert,
    };
    this.reloader = Object.values(paths).some((p) => p !== undefined)
      ? new TlsReloader({
          paths,
          logger,
          apply: (material) => {
            this.material = material;
            const previous = this.pool;
            this.pool = pongerPool(target, material, config.timeoutMs);
            // Pings in flight on the old pool end by their deadline; then its connections close.
            void previous.close();
            setTimeout(() => void previous.destroy(), config.timeoutMs).unref();
          },
        })
      : undefined;
    this.material = this.reloader?.start();
    this.pool = pongerPool(target, this.material, config.timeoutMs);
  }

  /**
   * Connections of their own for one start-up attempt, destroyed with it: an attempt whose SYN was
   * dropped must not leave a connection that TCP completes later, with the next attempt queued
   * behind it and its round trip counting the wait.
   */
  own(timeoutMs: number): Pool {
    return pongerPool(this.target, this.material, timeoutMs);
  }

  async close(): Promise<void> {
    this.reloader?.stop();
    await this.pool.destroy();
  }
}

/**
 * Calls `tick` every `intervalMs` at a fixed rate (a slow tick does not delay the next), the first
 * time at once or after `firstAfterMs`; returns stop.
 */
function everyInterval(intervalMs: number, tick: () => void, firstAfterMs = 0): () => void {
  let next = performance.now() + firstAfterMs;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const run = () => {
    if (stopped) return;
    tick();
    next += intervalMs;
    const now = performance.now();
    if (next < now) next = now;
    timer = setTimeout(run, next - now);
  };
  if (firstAfterMs > 0) timer = setTimeout(run, firstAfterMs);
  else run();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/** How often, and how long each, the pinger tries to reach the ponger while it starts. */
export const startupAttemptIntervalMs = 250;
export const startupAttemptDeadlineMs = 750;

/** Failures that mean the ponger was not reached (no connection), as opposed to answered badly. */
const unreached = new Set<string>(["connection", "timeout"]);

// eslint-disable-next-line max-lines-per-function -- the composition root: wires the TLS reloader, the ping loop, metrics and probes in start-up order
export async function startPinger(config: PingerConfig, logger: Logger): Promise<Pinger> {
  const { url } = config.ponger;
  const target = new URL(url);
  const results = new PingResults(logger);
  const connections = new PongerConnections(config, target, logger);
  const pingContext = {
    timeoutMs: config.timeoutMs,
    presentsCertificate: config.ponger.clientCertificate !== undefined,
  };

  /** One GET with `deadlineMs` (on `pool`, else the pinger's): a pong (its pod), or why it is not one. */
  async function exchange(
    deadlineMs: number,
    pool: Pool = connections.pool,
  ): Promise<{ pod: string; node: string | undefined; failure?: undefined } | { failure: PingFailure }> {
    try {
      const answer = await sendPing(pool, target, deadlineMs);
      const failure = judgeAnswer(answer);
      return failure ? { failure } : { pod: answer.pod ?? "unknown", node: answer.node };
    } catch (error) {
      return { failure: classifyError(error, { ...pingContext, timeoutMs: deadlineMs }) };
    }
  }

  async function pingOnce(): Promise<void> {
    const started = performance.now();
    results.sent(url);
    const result = await exchange(config.timeoutMs);
    if (result.failure) results.failed(Date.now(), result.failure);
    else results.succeeded(Date.now(), performance.now() - started, result.pod, result.node);
  }

  const inFlight = new Set<Promise<void>>();
  const track = (work: Promise<void>) => {
    inFlight.add(work);
    void work.finally(() => inFlight.delete(work));
  };
  let stopping = false;
  const startPinging = (firstAfterMs = 0) =>
    everyInterval(config.intervalMs, () => track(pingOnce()), firstAfterMs);

  const waitStarted = performance.now();
  let waiting = config.startupGraceMs > 0;
  /** One attempt to reach the ponger while starting; the first that is answered is the first ping. */
  async function attempt(): Promise<void> {
    const started = performance.now();
    const deadlineMs = Math.min(config.timeoutMs, startupAttemptDeadlineMs);
    const own = connections.own(deadlineMs);
    const result = await exchange(deadlineMs, own).finally(() => void own.destroy());
    if (!waiting || stopping) return;
    if (result.failure && unreached.has(result.failure.reason)) {
      results.unreachedAttempt(result.failure);
      if (performance.now() - waitStarted < config.startupGraceMs) return;
      logger.warn(
        { graceMs: config.startupGraceMs, reason: result.failure.reason, error: result.failure.message },
        "The ponger was not reached while starting: every failed ping counts from now on",
      );
    } else {
      results.reached(performance.now() - waitStarted);
      results.sent(url);
      if (result.failure) results.failed(Date.now(), result.failure);
      else results.succeeded(Date.now(), performance.now() - started, result.pod, result.node);
    }
    waiting = false;
    stopPinging();
    // The answer was this interval's ping; a wait that ran out goes straight on.
    stopPinging = startPinging(
      result.failure && unreached.has(result.failure.reason) ? 0 : config.intervalMs,
    );
  }
  let stopPinging = waiting
    ? everyInterval(Math.min(config.intervalMs, startupAttemptIntervalMs), () => track(attempt()))
    : startPinging();
  logger.info(
    {
      url,
      intervalMs: config.intervalMs,
      timeoutMs: config.timeoutMs,
      startupGraceMs: config.startupGraceMs,
    },
    "Pinger started",
  );

  const { reloader } = connections;
  const probes = await startProbeServer({
    address: config.metrics.address,
    port: config.metrics.port,
    registry: results.registry,
    logger,
    readiness: () => (stopping ? { ready: false, reason: "shutting down" } : results.readiness()),
    status: () => ({
      pod: config.podName,
      node: config.nodeName ?? null,
      target: url,
      ...results.status(),
      tls: reloader?.current ? { ...describeMaterial(reloader.current), ...reloader.status } : null,
    }),
  });

  return {
    probes,
    status: () => results.status(),
    close: async () => {
      stopping = true;
      stopPinging();
      await Promise.allSettled(inFlight);
      await connections.close();
      await probes.close();
    },
  };
}
