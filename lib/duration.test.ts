import { describe, expect, it } from "vitest";
import { DurationError, formatDuration, parseDuration } from "./duration.ts";

describe("parseDuration", () => {
  it.each([
    ["500ms", 500],
    ["1s", 1_000],
    ["1.5s", 1_500],
    ["2m", 120_000],
    ["24h", 86_400_000],
    ["1h30m", 5_400_000],
    ["8760h", 31_536_000_000],
    [" 3s ", 3_000],
  ])("%s is %d ms", (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(["", "1", "s", "-1s", "1d", "1 s", "1s2", "abc", "1e3s"])(
    "rejects %j and says what to write",
    (text) => {
      expect(() => parseDuration(text)).toThrow(DurationError);
      expect(() => parseDuration(text)).toThrow(/e\.g\. "500ms"/);
    },
  );
});

describe("formatDuration", () => {
  it.each([
    [0, "0s"],
    [500, "500ms"],
    [90_000, "1m30s"],
    [86_400_000, "24h"],
    [5_400_250, "1h30m250ms"],
  ])("%d ms is %s", (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
    expect(parseDuration(text)).toBe(ms);
  });
});
