/**
 * Where every ping result goes, in one call: the running totals and the sliding window behind
 * /status and /readyz, the Prometheus series, and the log line.
 */
import { collectDefaultMetrics, Counter, Histogram, Registry } from "prom-client";
import type { Logger } from "../../lib/logger.ts";
import type { Readiness } from "../../lib/probe-server.ts";
import type { PingFailure } from "./failure.ts";
import { PingWindow } from "./ping-window.ts";
import { PongsByPod } from "./pongs-by-pod.ts";

const isoTime = (ms: number) => new Date(ms).toISOString();

/** At most this many ponger nodes in /status: names come from the pongers. */
const maxNodes = 64;

function mostFrequent(counts: Record<string, number>, max: number): Record<string, number> {
  return Object.fromEntries(
    Object.entries(counts)
      .sort(([a, x], [b, y]) => y - x || a.localeCompare(b))
      .slice(0, max),
  );
}

/** Readiness fails when this many of the most recent pings all failed. */
const readinessWindow = 3;

export type PingerStatus = ReturnType<PingResults["status"]>;

export class PingResults {
  readonly registry = new Registry();
  private readonly logger: Logger;
  private readonly window: PingWindow;
  private readonly totals = { sent: 0, succeeded: 0, failed: 0 };
  private readonly pongsByPod = new PongsByPod();
  private readonly failuresByReason: Record<string, number> = {};
  /** Epoch milliseconds. */
  private lastPongTime: number | undefined;
  private lastFailure: (PingFailure & { at: number }) | undefined;
  /** The wait for the ponger to be reachable when the pinger started (pinger.ts). */
  private readonly startup = {
    unreachedAttempts: 0,
    reachedAfterMs: null as number | null,
    lastAttempt: null as PingFailure | null,
  };

  private readonly sentTotal = new Counter({
    name: "ping_requests_sent_total",
    help: "Pings sent.",
    registers: [this.registry],
  });
  private readonly failuresTotal = new Counter({
    name: "ping_failures_total",
    help: "Pings that got no pong, by reason: timeout, tls, connection, http_status, bad_body.",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  private readonly pongsTotal = new Counter({
    name: "ping_pongs_total",
    help: "Pongs received, by the ponger pod that answered.",
    labelNames: ["ponger_pod"] as const,
    registers: [this.registry],
  });
  private readonly startupAttempts = new Counter({
    name: "ping_startup_attempts_total",
    help: "Attempts that did not reach the ponger while the pinger started (not pings: in no other series).",
    registers: [this.registry],
  });
  private readonly rtt = new Histogram({
    name: "ping_rtt_seconds",
    help: "Round-trip time of successful pings.",
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  constructor(logger: Logger, windowMs = 60_000) {
    this.logger = logger;
    this.window = new PingWindow(windowMs);
    collectDefaultMetrics({ register: this.registry });
  }

  sent(url: string): void {
    this.totals.sent++;
    this.sentTotal.inc();
    this.logger.info({ url }, "Sent ping");
  }

  succeeded(at: number, rttMs: number, pod: string, node?: string): void {
    this.totals.succeeded++;
    this.forget(this.pongsByPod.add(pod, at));
    this.lastPongTime = at;
    this.window.record({ at, ok: true, rttMs, pod, ...(node === undefined ? {} : { node }) });
    this.pongsTotal.inc({ ponger_pod: pod });
    this.rtt.observe(rttMs / 1000);
    this.logger.info({ pod, rttMs: Math.round(rttMs * 100) / 100 }, "Got pong");
  }

  failed(at: number, failure: PingFailure): void {
    this.totals.failed++;
    this.failuresByReason[failure.reason] = (this.failuresByReason[failure.reason] ?? 0) + 1;
    this.lastFailure = { ...failure, at };
    this.window.record({ at, ok: false, rttMs: 0, reason: failure.reason });
    this.failuresTotal.inc({ reason: failure.reason });
    this.logger.warn({ reason: failure.reason, code: failure.code, error: failure.message }, "Ping failed");
  }

  /** An attempt, while starting, that could not reach the ponger: counted apart from pings. */
  unreachedAttempt(failure: PingFailure): void {
    this.startup.unreachedAttempts++;
    this.startup.lastAttempt = failure;
    this.startupAttempts.inc();
    this.logger.debug({ reason: failure.reason, error: failure.message }, "The ponger is not reachable yet");
  }

  /** The ponger answered for the first time, `waitedMs` after the pinger started. */
  reached(waitedMs: number): void {
    this.startup.reachedAfterMs = Math.round(waitedMs);
    this.logger.info(
      { waitedMs: this.startup.reachedAfterMs, unreachedAttempts: this.startup.unreachedAttempts },
      "Reached the ponger",
    );
  }

  readiness(): Readiness {
    const recent = this.window.recent(readinessWindow);
    const waiting = this.startup.lastAttempt;
    if (recent.length === 0 && waiting)
      return {
        ready: false,
        reason: `the ponger is not reachable yet (${this.startup.unreachedAttempts} attempts): ${waiting.message}`,
      };
    if (recent.length === 0) return { ready: false, reason: "no ping has completed yet" };
    if (recent.every((r) => !r.ok)) {
      return {
        ready: false,
        reason: `the last ${recent.length} pings failed: ${this.lastFailure?.message ?? "unknown"}`,
      };
    }
    return { ready: true };
  }

  status(now = Date.now()) {
    const snapshot = this.window.snapshot(now);
    this.forget(this.pongsByPod.expire(now));
    return {
      ...this.totals,
      lastPongTime: this.lastPongTime === undefined ? null : isoTime(this.lastPongTime),
      window: snapshot,
      latencyP50Ms: snapshot.latencyP50Ms,
      latencyP99Ms: snapshot.latencyP99Ms,
      pongsByPod: this.windowPongsByPod(now),
      pongsByNode: mostFrequent(this.window.pongsByNode(now), maxNodes),
      failuresByReason: { ...this.failuresByReason },
      lastFailure: this.lastFailure ? { ...this.lastFailure, at: isoTime(this.lastFailure.at) } : null,
      startup: {
        unreachedAttempts: this.startup.unreachedAttempts,
        reachedAfterMs: this.startup.reachedAfterMs,
      },
    };
  }

  /**
   * Pongs in the window by pod, like `window.sent`: a pod that left the window (a rollout replaced
   * it) is not listed. Only pods the bounded set still tracks, so a ponger that names itself anew in
   * every answer cannot grow /status.
   */
  private windowPongsByPod(now: number): Record<string, number> {
    const tracked = this.pongsByPod.counts();
    return Object.fromEntries(Object.entries(this.window.pongsByPod(now)).filter(([pod]) => pod in tracked));
  }

  /** Pods no longer counted lose their series too. */
  private forget(pods: readonly string[]): void {
    for (const pod of pods) this.pongsTotal.remove({ ponger_pod: pod });
  }
}
