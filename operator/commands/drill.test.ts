import { describe, expect, it } from "vitest";
import type { PingPongPair } from "../api/types.ts";
import { DrillTimeline, drillPatch, parseRatio } from "./drill.ts";

const t0 = Date.parse("2026-12-03T12:00:00Z");
const until = new Date(t0 + 60_000);
const pair = (
  drill: { state: "Running" | "Ended"; injectingPongers?: number; injectingSince?: string } | undefined,
  healthy: "True" | "False",
  changedAt = "",
): PingPongPair => ({
  status: {
    ...(drill ? { drill: { ...drill, faults: "abort 100% (503)" } } : {}),
    conditions: [
      {
        type: "PingHealthy",
        status: healthy,
        reason: healthy === "True" ? "Healthy" : "PingsFailing",
        message: "",
        lastTransitionTime: changedAt,
      },
    ],
  },
});
const iso = (s: number) => new Date(t0 + s * 1000).toISOString();

describe("DrillTimeline", () => {
  it("tells the drill's story: running, injected, detected, ended, recovered, with both times", () => {
    const timeline = new DrillTimeline(until);
    const at = (s: number) => t0 + s * 1000;
    expect(timeline.observe(pair(undefined, "True"), at(0))).toEqual([]);
    expect(timeline.observe(pair({ state: "Running", injectingPongers: 0 }, "True"), at(1))).toEqual([
      "the operator runs the drill: abort 100% (503)",
    ]);
    // The ponger started at 10 s by its own clock; this read comes at 12 s.
    const injecting = { state: "Running", injectingPongers: 1, injectingSince: iso(10) } as const;
    expect(timeline.observe(pair(injecting, "True"), at(12))).toEqual([
      "fault started: 1 ponger pod(s) inject it (since 2.0 s ago)",
    ]);
    // PingHealthy turned False at 13.5 s; this read comes at 15.5 s.
    expect(timeline.observe(pair(injecting, "False", iso(13.5)), at(15.5))).toEqual([
      "PingHealthy False after 3.5 s (time to detect): PingsFailing",
    ]);
    expect(timeline.done).toBe(false);
    expect(timeline.observe(pair(injecting, "False", iso(13.5)), at(61))).toEqual([
      "the drill ended (until reached)",
    ]);
    expect(timeline.observe(pair({ state: "Ended" }, "True", iso(72)), at(74))).toEqual([
      "PingHealthy True again after 12.0 s (time to recover)",
    ]);
    expect([timeline.done, timeline.detectMs, timeline.recoverMs]).toEqual([true, 3_500, 12_000]);
  });

  it("ends undetected when PingHealthy stays True for the whole drill", () => {
    const timeline = new DrillTimeline(until);
    timeline.observe(pair({ state: "Running", injectingPongers: 1 }, "True"), t0);
    expect(timeline.observe(pair({ state: "Running", injectingPongers: 1 }, "True"), t0 + 60_000)).toEqual([
      "the drill ended (until reached) and PingHealthy never turned False: the fault was not detected",
    ]);
    expect([timeline.done, timeline.detected]).toEqual([true, false]);
  });

  it("does not count a PingHealthy False seen before the fault started", () => {
    const timeline = new DrillTimeline(until);
    timeline.observe(pair({ state: "Running", injectingPongers: 0 }, "False"), t0);
    expect(timeline.detected).toBe(false);
  });
});

describe("the drill command's input", () => {
  it("reads shares as percentages or ratios, and says what to write otherwise", () => {
    expect(parseRatio("50%", "--abort")).toBe(0.5);
    expect(parseRatio("0.25", "--abort")).toBe(0.25);
    expect(() => parseRatio("150%", "--abort")).toThrow(
      "--abort 150%: write a share from 0% to 100% (or 0 to 1), e.g. --abort 50%",
    );
    expect(() => parseRatio("half", "--abort")).toThrow(/write a share/);
  });

  it("replaces the whole drill: fields the new one leaves out are removed", () => {
    expect(drillPatch({ abortRatio: 0.5, abortStatus: 503, until: "u" })).toEqual({
      spec: {
        drill: {
          abortRatio: 0.5,
          abortStatus: 503,
          delayRatio: null,
          delay: null,
          refuseClientCertificates: null,
          until: "u",
        },
      },
    });
  });
});
