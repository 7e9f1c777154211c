import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createLogger } from "../../lib/logger.ts";
import { DrillReader, faultFor, parseDrill } from "./drill.ts";

const now = Date.parse("2026-12-03T12:00:00Z");
const until = "2026-12-03T12:05:00Z";
const logs: string[] = [];
const logger = createLogger("drill-test", { write: (line: string) => logs.push(line) });

describe("parseDrill", () => {
  it("reads a drill, with the defaults the CRD gives", () => {
    expect(parseDrill(JSON.stringify({ abortRatio: 0.5, until }))).toEqual({
      abortRatio: 0.5,
      abortStatus: 503,
      delayRatio: 0,
      delayMs: 0,
      refuseClientCertificates: false,
      until: new Date(until),
    });
    expect(parseDrill("{}\n")).toBeUndefined();
  });

  it("refuses what the operator never writes, saying which field", () => {
    expect(() => parseDrill("[]")).toThrow("not a JSON object");
    expect(() => parseDrill(JSON.stringify({ abortRatio: 2, until }))).toThrow(
      "abortRatio must be a number from 0 to 1",
    );
    expect(() => parseDrill(JSON.stringify({ abortRatio: 1 }))).toThrow("until must be an RFC 3339 time");
    expect(() => parseDrill(JSON.stringify({ abortRatio: 1, abortStatus: 200, until }))).toThrow(
      "abortStatus",
    );
    expect(() => parseDrill(JSON.stringify({ delayRatio: 1, delayMs: -1, until }))).toThrow("delayMs");
    expect(() => parseDrill("{")).toThrow();
  });
});

describe("faultFor", () => {
  const drill = parseDrill(JSON.stringify({ abortRatio: 0.5, delayRatio: 0.25, delayMs: 300, until }));

  it("draws abort and delay each with its own ratio", () => {
    // The first draw is the delay's, the second the abort's.
    expect(faultFor(drill, now, () => 0.1)).toEqual({ delayMs: 300, abortStatus: 503 });
    expect(faultFor(drill, now, () => 0.3)).toEqual({ abortStatus: 503 });
    expect(faultFor(drill, now, () => 0.6)).toEqual({});
  });

  it("injects nothing once until has passed, nor without a drill", () => {
    expect(faultFor(drill, Date.parse(until), () => 0)).toEqual({});
    expect(faultFor(undefined, now, () => 0)).toEqual({});
  });
});

describe("DrillReader", () => {
  let dir = "";
  const readers: DrillReader[] = [];
  afterEach(async () => {
    for (const r of readers.splice(0)) r.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function reader(text: string | undefined, clock: { now: number }) {
    dir = await mkdtemp(join(tmpdir(), "drill-"));
    const file = join(dir, "drill.json");
    if (text !== undefined) await writeFile(file, text);
    const r = new DrillReader({ file, logger, now: () => clock.now, random: () => 0 });
    readers.push(r);
    r.start();
    return { r, file };
  }

  it("follows the file: a drill loaded, injecting until its end, then nothing; counted in its status", async () => {
    const clock = { now };
    const { r, file } = await reader("{}", clock);
    expect(r.active).toBe(false);
    await writeFile(file, JSON.stringify({ abortRatio: 1, refuseClientCertificates: true, until }));
    r.check();
    expect(r.active).toBe(true);
    expect(r.status.since).toBe(new Date(now).toISOString());
    expect(r.nextFault()).toEqual({ abortStatus: 503 });
    expect(r.refuseHandshake()).toBe(true);
    clock.now = Date.parse(until);
    expect(r.nextFault()).toEqual({});
    expect(r.refuseHandshake()).toBe(false);
    expect(r.status).toMatchObject({
      active: false,
      injected: { abort: 1, delay: 0, refuse: 1 },
      error: null,
    });
  });

  it("injects nothing from a file that does not parse, and says why", async () => {
    const { r } = await reader('{"abortRatio": 5, "until": "2026-12-03T12:05:00Z"}', { now });
    expect(r.active).toBe(false);
    expect(r.nextFault()).toEqual({});
    expect(r.status.error).toMatch(/drill\.json: abortRatio must be a number from 0 to 1$/);
  });

  it("treats a missing file as no drill", async () => {
    const { r } = await reader(undefined, { now });
    expect(r.status).toMatchObject({ loaded: null, active: false, error: null });
  });
});
