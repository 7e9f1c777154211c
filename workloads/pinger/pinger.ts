/**
 * The pinger: every interval, one GET to the ponger over a keep-alive connection (TLS or mutual TLS),
 * with a deadline. It logs and counts each result, keeps a sliding window for /status and /readyz,
 * and swaps in new certificates by building a new connection agent: new pings use it at once, pings
 * in flight finish on the old one, which is closed once their deadline has passed.
 */
import type { Logger } from "../../lib/line-logger.ts";
import { type ProbeServer, type Readiness, startProbeServer } from "../../lib/probe-server.ts";
import { pongBody } from "../protocol.ts";
import { describeMaterial } from "../tls-files.ts";
import { MetricsRegistry } from "../metrics.ts";
import { TlsReloader } from "../tls-reloader.ts";
import type { PingerConfig } from "./config.ts";
import { classifyError, type PingFailure } from "./failure.ts";
import { PingWindow } from "./ping-window.ts";
import { PongsByPod } from "./pongs-by-pod.ts";
import { type PingAgent, pingAgent, sendPing } from "./ping-request.ts";

/** Readiness fails when this many of the most recent pings all failed. */
const readinessWindow = 3;

export interface Pinger {
  readonly probes: ProbeServer;
  /** The same JSON /status serves. */
  status(): PingerStatus;
  close(): Promise<void>;
}

export type PingerStatus = ReturnType<ReturnType<typeof createStats>["status"]>;

function createStats(windowMs: number, onPodDropped: (pod: string) => void) {
  const window = new PingWindow(windowMs);
  const totals = { sent: 0, succeeded: 0, failed: 0 };
  const pongsByPod = new PongsByPod();
  const failuresByReason: Record<string, number> = {};
  let lastPongTime: Date | undefined;
  let lastFailure: (PingFailure & { at: Date }) | undefined;

  return {
    sent() {
      totals.sent++;
    },
    succeeded(at: number, rttMs: number, pod: string) {
      totals.succeeded++;
      for (const dropped of pongsByPod.add(pod, at)) onPodDropped(dropped);
      lastPongTime = new Date(at);
      window.record({ at, ok: true, rttMs });
    },
    failed(at: number, failure: PingFailure) {
      totals.failed++;
      failuresByReason[failure.reason] = (failuresByReason[failure.reason] ?? 0) + 1;
      lastFailure = { ...failure, at: new Date(at) };
      window.record({ at, ok: false, rttMs: 0, reason: failure.reason });
    },
    readiness(): Readiness {
      const recent = window.recent(readinessWindow);
      if (recent.length === 0) return { ready: false, reason: "no ping has completed yet" };
      if (recent.every((r) => !r.ok)) {
        return {
          ready: false,
          reason: `the last ${recent.length} pings failed: ${lastFailure?.message ?? "unknown"}`,
        };
      }
      return { ready: true };
    },
    status(now = Date.now()) {
      const snapshot = window.snapshot(now);
      for (const dropped of pongsByPod.expire(now)) onPodDropped(dropped);
      return {
        ...totals,
        lastPongTime: lastPongTime?.toISOString() ?? null,
        window: snapshot,
        latencyP50Ms: snapshot.latencyP50Ms,
        latencyP99Ms: snapshot.latencyP99Ms,
        pongsByPod: pongsByPod.counts(),
        failuresByReason: { ...failuresByReason },
        lastFailure: lastFailure ? { ...lastFailure, at: lastFailure.at.toISOString() } : null,
      };
    },
  };
}

/**
 * Pings sent over one connection before it is closed (gracefully: the last one asks for
 * `Connection: close`) and the next ping opens another. A Service balances connections, not
 * requests: a pinger that kept one connection would ping one ponger forever, however many the pair
 * scales to.
 */
export const pingsPerConnection = 10;

export async function startPinger(config: PingerConfig, logger: Logger): Promise<Pinger> {
  const registry = new MetricsRegistry().withProcessMetrics();
  const sentTotal = registry.counter("ping_requests_sent_total", "Pings sent.");
  const failuresTotal = registry.counter(
    "ping_failures_total",
    "Pings that got no pong, by reason: timeout, tls, connection, http_status, bad_body.",
    ["reason"],
  );
  const pongsTotal = registry.counter(
    "ping_pongs_total",
    "Pongs received, by the ponger pod that answered.",
    ["ponger_pod"],
  );
  const rtt = registry.histogram(
    "ping_rtt_seconds",
    "Round-trip time of successful pings.",
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  );

  const { url } = config.ponger;
  const target = new URL(url);
  const stats = createStats(60_000, (pod) => pongsTotal.remove({ ponger_pod: pod }));
  const tlsPaths = {
    certificate: config.ponger.clientCertificate,
    privateKey: config.ponger.clientPrivateKey,
    trustBundle: config.ponger.acceptCert,
  };
  const usesTlsFiles = Object.values(tlsPaths).some((p) => p !== undefined);
  const reloader = usesTlsFiles
    ? new TlsReloader({
        paths: tlsPaths,
        logger,
        apply: (material) => {
          const previous = agent;
          agent = pingAgent(target, material);
          // Pings in flight on the old agent end by their deadline; then its connections close.
          setTimeout(() => previous.destroy(), config.timeoutMs).unref();
        },
      })
    : undefined;
  let agent: PingAgent = pingAgent(target, reloader?.start());
  let pingsSent = 0;

  const inFlight = new Set<Promise<void>>();
  let stopping = false;
  let timer: NodeJS.Timeout | undefined;

  async function pingOnce(): Promise<void> {
    const started = performance.now();
    stats.sent();
    sentTotal.inc();
    logger.info({ url }, "Sent ping");
    let failure: PingFailure | undefined;
    try {
      const answer = await sendPing(target, agent, {
        timeoutMs: config.timeoutMs,
        closeConnection: ++pingsSent % pingsPerConnection === 0,
      });
      const rttMs = performance.now() - started;
      const podName = answer.pod ?? "unknown";
      if (answer.certificateRefused) {
        failure = {
          reason: "tls",
          message: `${podName} refused this pinger's ${answer.body.trim()}`,
        };
      } else if (answer.status !== 200) {
        failure = {
          reason: "http_status",
          message: `HTTP ${answer.status} from ${podName}: ${answer.body.slice(0, 200)}`,
        };
      } else if (answer.body !== pongBody) {
        failure = {
          reason: "bad_body",
          message: `expected "pong", got ${JSON.stringify(answer.body.slice(0, 50))}`,
        };
      } else {
        stats.succeeded(Date.now(), rttMs, podName);
        pongsTotal.inc({ ponger_pod: podName });
        rtt.observe(rttMs / 1000);
        logger.info({ pod: podName, rttMs: Math.round(rttMs * 100) / 100 }, "Got pong");
        return;
      }
    } catch (error) {
      failure = classifyError(error, config.timeoutMs);
    }
    stats.failed(Date.now(), failure);
    failuresTotal.inc({ reason: failure.reason });
    logger.warn({ reason: failure.reason, code: failure.code, error: failure.message }, "Ping failed");
  }

  // Fixed-rate schedule: a slow ponger does not slow the pings down (that is what timeouts are for).
  let next = performance.now();
  function tick(): void {
    if (stopping) return;
    const ping = pingOnce();
    inFlight.add(ping);
    void ping.finally(() => inFlight.delete(ping));
    next += config.intervalMs;
    const now = performance.now();
    if (next < now) next = now;
    timer = setTimeout(tick, next - now);
  }
  tick();
  logger.info({ url, intervalMs: config.intervalMs, timeoutMs: config.timeoutMs }, "Pinger started");

  const status = () => ({
    pod: config.podName,
    target: url,
    ...stats.status(),
    tls: reloader?.current ? { ...describeMaterial(reloader.current), ...reloader.status } : null,
  });

  const probes = await startProbeServer({
    address: config.metrics.address,
    port: config.metrics.port,
    registry,
    logger,
    readiness: () => (stopping ? { ready: false, reason: "shutting down" } : stats.readiness()),
    status,
  });

  return {
    probes,
    status: () => stats.status(),
    close: async () => {
      stopping = true;
      clearTimeout(timer);
      reloader?.stop();
      await Promise.allSettled(inFlight);
      agent.destroy();
      await probes.close();
    },
  };
}
