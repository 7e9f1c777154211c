/**
 * The pinger: every interval, one GET to the ponger over a keep-alive connection (TLS or mutual TLS),
 * with a deadline. Each result goes to PingResults (status, readiness, metrics, log); certificates
 * are swapped in by building a new connection agent: new pings use it at once, pings in flight
 * finish on the old one, which is closed once their deadline has passed.
 */
import type { Logger } from "../../lib/line-logger.ts";
import type { ProbeServer } from "../../lib/probe-routes.ts";
import { startProbePort } from "../probe-port.ts";
import { pongBody } from "../protocol.ts";
import { describeMaterial } from "../tls-files.ts";
import { TlsReloader } from "../tls-reloader.ts";
import type { PingerConfig } from "./config.ts";
import { classifyError, type PingFailure } from "./failure.ts";
import { type PingAnswer, PingClient } from "./ping-request.ts";
import { type PingerStatus, PingResults } from "./ping-results.ts";

export type { PingerStatus } from "./ping-results.ts";

export interface Pinger {
  readonly probes: ProbeServer;
  /** The same JSON /status serves. */
  status(): PingerStatus;
  close(): Promise<void>;
}

/**
 * Pings sent over one connection before it is closed (gracefully: the last one asks for
 * `Connection: close`) and the next ping opens another. A Service balances connections, not
 * requests: a pinger that kept one connection would ping one ponger forever, however many the pair
 * scales to.
 */
export const pingsPerConnection = 10;

/** What an answer means: undefined for a pong, otherwise why it is not one. */
export function judgeAnswer(answer: PingAnswer): PingFailure | undefined {
  const pod = answer.pod ?? "unknown";
  if (answer.certificateRefused) {
    return { reason: "tls", message: `${pod} refused this pinger's ${answer.body.trim()}` };
  }
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

/**
 * Milliseconds from a monotonic clock. (The `performance` global would load perf_hooks and its
 * modules into every pinger pod for this one call.)
 */
const monotonicMs = () => Number(process.hrtime.bigint()) / 1e6;

/** The connections to the ponger, rebuilt whenever the TLS files change. */
class PongerConnections {
  client: PingClient;
  readonly reloader: TlsReloader | undefined;
  private sent = 0;

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
            const previous = this.client;
            this.client = new PingClient(target, material);
            // Pings in flight on the old client end by their deadline; then its connections close.
            setTimeout(() => previous.destroy(), config.timeoutMs).unref();
          },
        })
      : undefined;
    this.client = new PingClient(target, this.reloader?.start());
  }

  /** Every pingsPerConnection-th ping asks for its connection to be closed after the answer. */
  closeAfterThisPing(): boolean {
    return ++this.sent % pingsPerConnection === 0;
  }

  close(): void {
    this.reloader?.stop();
    this.client.destroy();
  }
}

/** Calls `tick` every `intervalMs` at a fixed rate (a slow tick does not delay the next); returns stop. */
function everyInterval(intervalMs: number, tick: () => void): () => void {
  let next = monotonicMs();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const run = () => {
    if (stopped) return;
    tick();
    next += intervalMs;
    const now = monotonicMs();
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

  async function pingOnce(): Promise<void> {
    const started = monotonicMs();
    results.sent(url);
    let failure: PingFailure | undefined;
    try {
      const answer = await connections.client.send({
        timeoutMs: config.timeoutMs,
        closeConnection: connections.closeAfterThisPing(),
      });
      failure = judgeAnswer(answer);
      if (!failure) {
        results.succeeded(Date.now(), monotonicMs() - started, answer.pod ?? "unknown");
        return;
      }
    } catch (error) {
      failure = classifyError(error, config.timeoutMs);
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
  const probes = await startProbePort({
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
      connections.close();
      await probes.close();
    },
  };
}
