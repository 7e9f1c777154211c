import { describe, expect, it } from "vitest";
import { PingWindow, quantile } from "./ping-window.ts";

describe("quantile", () => {
  it("uses the nearest rank", () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(quantile(values, 0.5)).toBe(50);
    expect(quantile(values, 0.99)).toBe(99);
    expect(quantile(values, 1)).toBe(100);
    expect(quantile([7], 0.99)).toBe(7);
    expect(quantile([], 0.5)).toBeNull();
  });
});

describe("PingWindow", () => {
  it("counts, ratios and latency quantiles over successes only", () => {
    const window = new PingWindow(60_000);
    for (let i = 0; i < 10; i++) window.record({ at: 1000 + i, ok: i !== 3, rttMs: (i + 1) * 10 });
    const snapshot = window.snapshot(2000);
    expect(snapshot).toMatchObject({ sent: 10, succeeded: 9, failed: 1, successRatio: 0.9 });
    // Latencies of successes: 10,20,30,50,...,100 (40 was the failure).
    expect(snapshot.latencyP50Ms).toBe(60);
    expect(snapshot.latencyP99Ms).toBe(100);
  });

  it("counts the window's failures by reason, and forgets them with the window", () => {
    const window = new PingWindow(1_000);
    window.record({ at: 0, ok: false, rttMs: 0, reason: "timeout" });
    window.record({ at: 500, ok: false, rttMs: 0, reason: "tls" });
    window.record({ at: 600, ok: false, rttMs: 0, reason: "tls" });
    window.record({ at: 700, ok: true, rttMs: 3 });
    expect(window.snapshot(900).failuresByReason).toEqual({ timeout: 1, tls: 2 });
    expect(window.snapshot(1_200).failuresByReason).toEqual({ tls: 2 });
    expect(window.snapshot(2_000).failuresByReason).toEqual({});
  });

  it("forgets results older than the window", () => {
    const window = new PingWindow(1_000);
    window.record({ at: 0, ok: false, rttMs: 0 });
    window.record({ at: 900, ok: true, rttMs: 5 });
    expect(window.snapshot(950).sent).toBe(2);
    expect(window.snapshot(1_500)).toMatchObject({ sent: 1, failed: 0, successRatio: 1 });
    expect(window.snapshot(5_000)).toMatchObject({ sent: 0, successRatio: null, latencyP50Ms: null });
  });

  it("counts pongs by ponger pod over the same window as sent", () => {
    const window = new PingWindow(1_000);
    window.record({ at: 0, ok: true, rttMs: 1, pod: "old" });
    window.record({ at: 500, ok: true, rttMs: 1, pod: "new" });
    window.record({ at: 600, ok: false, rttMs: 0, reason: "timeout" });
    window.record({ at: 700, ok: true, rttMs: 1, pod: "new" });
    expect(window.pongsByPod(900)).toEqual({ old: 1, new: 2 });
    // "old" left the window with its pong: a rollout that replaced it is not shown as still answering.
    expect(window.pongsByPod(1_200)).toEqual({ new: 2 });
    expect(window.snapshot(1_200).sent).toBe(3);
  });

  it("caps memory at maxResults", () => {
    const window = new PingWindow(60_000, 5);
    for (let i = 0; i < 20; i++) window.record({ at: i, ok: true, rttMs: i });
    expect(window.snapshot(20).sent).toBe(5);
    expect(window.recent(2).map((r) => r.rttMs)).toEqual([18, 19]);
  });
});
