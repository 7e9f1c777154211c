import { describe, expect, it } from "vitest";
import {
  formatLatency,
  percent,
  type PingerReading,
  type PingerReport,
  pingHealth,
  type PingHealthInput,
  pingPaths,
  pingStatusChanged,
  roundLatency,
} from "./ping-health.ts";

const now = new Date("2026-11-21T12:00:00.000Z");
const secondsAgo = (s: number) => new Date(now.getTime() - s * 1000).toISOString();

/** A pinger's report: `sent` pings in the last minute, `failures` of them failed by reason. */
function report(options: {
  sent?: number;
  failures?: Record<string, number>;
  p50?: number | null;
  p99?: number | null;
  lastPong?: number | null;
  pongs?: Record<string, number>;
}): PingerReport {
  const sent = options.sent ?? 60;
  const failures = options.failures ?? {};
  const failed = Object.values(failures).reduce((a, b) => a + b, 0);
  return {
    lastPongTime: options.lastPong === null ? null : secondsAgo(options.lastPong ?? 1),
    window: {
      windowSeconds: 60,
      sent,
      succeeded: sent - failed,
      failed,
      successRatio: sent === 0 ? null : (sent - failed) / sent,
      latencyP50Ms: options.p50 === undefined ? 1.2 : options.p50,
      latencyP99Ms: options.p99 === undefined ? 3.4 : options.p99,
      failuresByReason: failures,
    },
    pongsByPod: options.pongs ?? { "demo-ponger-a": 600 },
    lastFailure: failed > 0 ? { reason: Object.keys(failures)[0] ?? "", message: "the last failure" } : null,
  };
}

const read = (pod: string, r: PingerReport): PingerReading => ({ pod, at: now, report: r });
const unreadable = (pod: string, error: string): PingerReading => ({ pod, at: now, error });

function input(readings: PingerReading[], extra: Partial<PingHealthInput> = {}): PingHealthInput {
  return { readings, runningPingers: readings.length, threshold: 0.95, recentMs: 30_000, now, ...extra };
}

describe("ping health", () => {
  it.each([
    {
      name: "a healthy pinger",
      input: input([read("p1", report({}))]),
      status: "True",
      reason: "Healthy",
      message: "pings succeed at or above 95% in the last minute",
    },
    {
      name: "failures above the threshold, by reason",
      input: input([read("p1", report({ failures: { tls: 2, timeout: 1 } }))], { threshold: 0.99 }),
      status: "False",
      reason: "PingsFailing",
      message:
        "3 of 60 pings failed in the last minute: tls (2), timeout (1) (threshold 99% success); last: the last failure",
    },
    {
      name: "failures below the threshold are healthy",
      input: input([read("p1", report({ failures: { timeout: 2 } }))]),
      status: "True",
      reason: "Healthy",
    },
    {
      name: "no pong recently, although the window looks fine",
      input: input([read("p1", report({ lastPong: 45 }))]),
      status: "False",
      reason: "NoRecentPong",
      message: `no pong for 45s (last at ${secondsAgo(45)})`,
    },
    {
      name: "no pinger pod running",
      input: input([], { runningPingers: 0 }),
      status: "Unknown",
      reason: "NoPingerRunning",
    },
    {
      name: "pods not reachable (an operator outside the cluster)",
      input: input([unreadable("p1", "connect ETIMEDOUT 10.245.0.7:9090")]),
      status: "Unknown",
      reason: "PingersUnreachable",
      message: expect.stringContaining("p1: connect ETIMEDOUT 10.245.0.7:9090") as unknown as string,
    },
    {
      name: "running pods not read yet",
      input: input([], { runningPingers: 2 }),
      status: "Unknown",
      reason: "NotReadYet",
      message: "the 2 running pinger pod(s) have not been read yet",
    },
    {
      name: "a pinger that has not pinged yet",
      input: input([read("p1", report({ sent: 0, lastPong: null, p50: null, p99: null }))]),
      status: "Unknown",
      reason: "NoPingsYet",
    },
    {
      name: "one of two pingers unreadable: judged on the other, and said",
      input: input([read("p1", report({})), unreadable("p2", "timeout")]),
      status: "True",
      reason: "Healthy",
      message: "pings succeed at or above 95% in the last minute; 1 of 2 pinger pod(s) could not be read",
    },
  ])("$name: $status $reason", ({ input: given, status, reason, message }) => {
    const { condition } = pingHealth(given);
    expect(condition.status).toBe(status);
    expect(condition.reason).toBe(reason);
    if (message !== undefined) expect(condition.message).toEqual(message);
  });

  it("sums several pingers, takes the worst P99, and names the worst pinger", () => {
    const { ping, condition } = pingHealth(
      input([
        read("p1", report({ p50: 1.0, p99: 2.0, pongs: { a: 10, b: 5 } })),
        read("p2", report({ failures: { tls: 6 }, p50: 1.4, p99: 9.87, pongs: { b: 5, c: 1 } })),
        read("p3", report({ p50: 3.0, p99: 4.0, lastPong: 10, pongs: {} })),
      ]),
    );
    expect(ping).toMatchObject({
      sent: 180,
      succeeded: 174,
      failed: 6,
      successRatio: 0.966,
      success: "96.6%",
      latencyP50Ms: 1.4,
      latencyP99Ms: 9.9,
      latencyP99: "9.9ms",
      pongsByPod: { a: 10, b: 10, c: 1 },
      failuresByReason: { tls: 6 },
      pingers: 3,
      worstPinger: { pod: "p2", successRatio: 0.9, latencyP99Ms: 9.9 },
      lastPongTime: secondsAgo(1),
    });
    expect(condition.status).toBe("True");
  });

  it("never throws, whatever the readings", () => {
    const odd: PingerReport = {
      lastPongTime: "not a date",
      window: {
        windowSeconds: 60,
        sent: 5,
        succeeded: 5,
        failed: 0,
        successRatio: 1,
        latencyP50Ms: null,
        latencyP99Ms: null,
      },
      pongsByPod: {},
      lastFailure: null,
    };
    const { condition } = pingHealth(input([read("p1", odd)]));
    expect(condition).toMatchObject({
      status: "False",
      reason: "NoRecentPong",
      message: "no pong has been received yet",
    });
  });
});

describe("where the pings travel", () => {
  const at = (node: string | null, pongsByNode: Record<string, number>, failures = {}) => ({
    ...report({ failures }),
    node,
    pongsByNode,
  });

  it("sums pongs by pinger node and ponger node, and says when every path is node-local", () => {
    const local = pingPaths([at("n1", { n1: 30 }), at("n1", { n1: 20 })]);
    expect(local.paths).toEqual([{ pingerNode: "n1", pongerNode: "n1", pongs: 50 }]);
    expect(local.summary).toBe("node-local: every pong came from the pinger's own node (n1)");
  });

  it("counts the node pairs that cross nodes, and failures by the pinger's node", () => {
    const spread = pingPaths([at("n1", { n2: 30, n3: 28, n1: 2 }, { timeout: 2 }), at("n4", { n2: 60 })]);
    expect(spread.paths.map((p) => `${p.pingerNode}>${p.pongerNode}:${p.pongs}`)).toEqual([
      "n1>n1:2",
      "n1>n2:30",
      "n1>n3:28",
      "n4>n2:60",
    ]);
    expect(spread.summary).toBe("3 of 4 node pairs cross nodes");
    expect(spread.failedByPingerNode).toEqual({ n1: 2 });
  });

  it("says so when no pod named its node (pingers and pongers of earlier versions)", () => {
    const unknown = pingPaths([report({})]);
    expect(unknown.paths).toEqual([]);
    expect(unknown.summary).toBe("the nodes are unknown");
    const health = pingHealth(input([read("p1", at("n1", { n2: 60 }))]));
    expect(health.ping?.paths).toEqual([{ pingerNode: "n1", pongerNode: "n2", pongs: 60 }]);
    expect(health.ping?.pathsSummary).toBe("1 of 1 node pairs cross nodes");
  });
});

describe("rounding for status", () => {
  it.each([
    [0.834, 0.8],
    [1.27, 1.3],
    [12.7, 13],
    [1234, 1200],
    [0.01, 0.1],
  ])("latency %f ms -> %f", (ms, rounded) => {
    expect(roundLatency(ms)).toBeCloseTo(rounded, 10);
  });

  it("formats for kubectl get", () => {
    expect(percent(1)).toBe("100%");
    expect(percent(0.98765)).toBe("98.7%");
    expect(percent(0.999)).toBe("99.9%");
    expect(percent(0.9999)).toBe("99.9%"); // never rounds up to a perfect score
    expect(formatLatency(0.8)).toBe("0.8ms");
    expect(formatLatency(13)).toBe("13ms");
  });
});

describe("whether a new reading is worth a status write", () => {
  const base = pingHealth(input([read("p1", report({}))])).ping;
  const next = (r: Parameters<typeof report>[0], at = now) =>
    pingHealth({ ...input([read("p1", report(r))]), now: at }).ping;

  it("not for noise: one more ping, P99 a little off, pong counts that only grow", () => {
    expect(
      pingStatusChanged(base, next({ sent: 61, p99: 3.9, pongs: { "demo-ponger-a": 660 } }), 60_000),
    ).toBe(false);
  });

  it("for a failure, a new ponger pod, a P99 that doubled or halved, a last pong a refresh newer", () => {
    expect(pingStatusChanged(base, next({ failures: { timeout: 1 } }), 60_000)).toBe(true);
    expect(pingStatusChanged(base, next({ pongs: { "demo-ponger-a": 1, "demo-ponger-b": 1 } }), 60_000)).toBe(
      true,
    );
    expect(pingStatusChanged(base, next({ p99: 6.9 }), 60_000)).toBe(true);
    expect(pingStatusChanged(next({ p99: 12 }), next({ p99: 5.9 }), 60_000)).toBe(true);
    const later = next({}, new Date(now.getTime() + 60_000));
    if (later) later.lastPongTime = new Date(now.getTime() + 59_000).toISOString();
    expect(pingStatusChanged(base, later, 60_000)).toBe(true);
  });

  it("when there was nothing before, or nothing now", () => {
    expect(pingStatusChanged(undefined, base, 60_000)).toBe(true);
    expect(pingStatusChanged(base, undefined, 60_000)).toBe(true);
    expect(pingStatusChanged(undefined, undefined, 60_000)).toBe(false);
  });
});
