import { describe, expect, it } from "vitest";
import { describeFaults, judgeDrill, type ResolvedDrill } from "./drill.ts";

const now = new Date("2026-12-03T12:00:00.000Z");
const later = (ms: number) => new Date(now.getTime() + ms);
const drill = (overrides: Partial<ResolvedDrill> = {}): ResolvedDrill => ({
  abortRatio: 0.5,
  abortStatus: 503,
  delayRatio: 0,
  delayMs: 0,
  refuseClientCertificates: false,
  until: later(5 * 60_000),
  ...overrides,
});

describe("judgeDrill", () => {
  it("runs a drill whose until is ahead, telling the ponger what to inject, and looks again at until", () => {
    const judged = judgeDrill(drill(), now, undefined, { pongers: 2, since: "2026-12-03T12:00:01.000Z" });
    expect(judged.status).toEqual({
      state: "Running",
      injectingPongers: 2,
      injectingSince: "2026-12-03T12:00:01.000Z",
      faults: "abort 50% (503)",
      until: "2026-12-03T12:05:00.000Z",
      startedAt: now.toISOString(),
      message:
        'a fire drill is running until 2026-12-03T12:05:00.000Z (abort 50% (503)): PingHealthy False and alerts with drill="true" are expected',
    });
    expect(judged.file).toEqual({ abortRatio: 0.5, abortStatus: 503, until: "2026-12-03T12:05:00.000Z" });
    expect(judged.nextCheck).toEqual(later(5 * 60_000));
  });

  it("keeps when the drill started while it runs unchanged, and restarts the clock for a new one", () => {
    const first = judgeDrill(drill(), now, undefined).status;
    const again = judgeDrill(drill(), later(60_000), first);
    expect(again.status?.startedAt).toBe(now.toISOString());
    const changed = judgeDrill(drill({ abortRatio: 1 }), later(60_000), first);
    expect(changed.status?.startedAt).toBe(later(60_000).toISOString());
  });

  it("ends at until: Ended in status, nothing more to wait for; the ponger judges until itself", () => {
    const judged = judgeDrill(drill(), later(5 * 60_000), undefined);
    expect(judged.status?.state).toBe("Ended");
    expect(judged.status?.message).toBe(
      "the fire drill ended at 2026-12-03T12:05:00.000Z; remove spec.drill to clear this",
    );
    expect(judged.file.until).toBe("2026-12-03T12:05:00.000Z");
    expect(judged.nextCheck).toBeUndefined();
  });

  it("refuses a drill more than 24 hours ahead: the ponger is told nothing until it comes within 24 hours", () => {
    const until = later(25 * 3_600_000);
    const judged = judgeDrill(drill({ until }), now, undefined);
    expect(judged.status?.state).toBe("Refused");
    expect(judged.status?.message).toMatch(
      /more than 24 hours ahead, so the drill was not started; set an until within 24 hours$/,
    );
    expect(judged.file).toEqual({});
    expect(judged.nextCheck).toEqual(later(3_600_000));
    expect(judgeDrill(drill({ until }), later(3_600_000), judged.status).status?.state).toBe("Running");
  });

  it("has no status and an empty drill file without a drill", () => {
    expect(judgeDrill(undefined, now, undefined)).toEqual({
      status: undefined,
      file: {},
      nextCheck: undefined,
    });
  });
});

describe("describeFaults", () => {
  it("names each fault with its share", () => {
    expect(
      describeFaults(
        drill({
          abortRatio: 0.125,
          abortStatus: 500,
          delayRatio: 1,
          delayMs: 300,
          refuseClientCertificates: true,
        }),
      ),
    ).toBe("abort 12.5% (500), delay 100% by 300ms, refuse client certificates");
  });
});
