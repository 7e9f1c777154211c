/**
 * The pinger: every interval, one GET to the ponger with undici (TLS or mutual TLS), with a deadline.
 * Each result goes to PingResults (status, readiness, metrics, log); certificates are swapped in by
 * building a new connection pool: new pings use it at once, pings in flight finish on the old one,
 * which is closed once their deadline has passed.
 */
import type { Pool } from "undici";
import type { Logger } from "../../lib/logger.ts";
import { type ProbeServer, startProbeServer } from "../../lib/probe-server.ts";
import { pongBody } from "../protocol.ts";
import { describeMaterial } from "../tls-files.ts";
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

  constructor(config: PingerConfig, target: URL, logger: Logger) {
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
            const previous = this.pool;
            this.pool = pongerPool(target, material, config.timeoutMs);
            // Pings in flight on the old pool end by their deadline; then its connections close.
            void previous.close();
            setTimeout(() => void previous.destroy(), config.timeoutMs).unref();
          },
        })
      : undefined;
    this.pool = pongerPool(target, this.reloader?.start(), config.timeoutMs);
  }

  async close(): Promise<void> {
    this.reloader?.stop();
    await this.pool.destroy();
  }
}

/** Calls `tick` every `intervalMs` at a fixed rate (a slow tick does not delay the next); returns stop. */
function everyInterval(intervalMs: number, tick: () => void): () => void {
  let next = performance.now();
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
  run();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

export async function startPinger(config: PingerConfig, logger: Logger): Promise<Pinger> {
  const { url } = config.ponger;
  const target = new URL(url);
  const results = new PingResults(logger);
  const connections = new PongerConnections(config, target, logger);
  const pingContext = {
    timeoutMs: config.timeoutMs,
    presentsCertificate: config.ponger.clientCertificate !== undefined,
  };

  async function pingOnce(): Promise<void> {
    const started = performance.now();
    results.sent(url);
    let failure: PingFailure | undefined;
    try {
      const answer = await sendPing(connections.pool, target, config.timeoutMs);
      failure = judgeAnswer(answer);
      if (!failure) {
        results.succeeded(Date.now(), performance.now() - started, answer.pod ?? "unknown");
        return;
      }
    } catch (error) {
      failure = classifyError(error, pingContext);
    }
    results.failed(Date.now(), failure);
  }

  const inFlight = new Set<Promise<void>>();
  let stopping = false;
  const stopPinging = everyInterval(config.intervalMs, () => {
    const ping = pingOnce();
    inFlight.add(ping);
    void ping.finally(() => inFlight.delete(ping));
  });
  logger.info({ url, intervalMs: config.intervalMs, timeoutMs: config.timeoutMs }, "Pinger started");

  const { reloader } = connections;
  const probes = await startProbeServer({
    address: config.metrics.address,
    port: config.metrics.port,
    registry: results.registry,
    logger,
    readiness: () => (stopping ? { ready: false, reason: "shutting down" } : results.readiness()),
    status: () => ({
      pod: config.podName,
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
