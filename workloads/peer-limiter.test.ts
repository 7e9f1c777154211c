import { describe, expect, it } from "vitest";
import { PeerLimiter } from "./peer-limiter.ts";

describe("PeerLimiter", () => {
  it("reports a peer once per interval, with how many reports it held back", () => {
    const limiter = new PeerLimiter(60_000);
    expect(limiter.take("10.0.0.1", 0)).toBe(0);
    expect(limiter.take("10.0.0.1", 1_000)).toBeUndefined();
    expect(limiter.take("10.0.0.1", 59_999)).toBeUndefined();
    expect(limiter.take("10.0.0.2", 59_999)).toBe(0);
    expect(limiter.take("10.0.0.1", 60_000)).toBe(2);
    expect(limiter.take("10.0.0.1", 60_001)).toBeUndefined();
  });

  it("remembers a bounded number of peers, forgetting the least recently reported", () => {
    const limiter = new PeerLimiter(60_000, 2);
    limiter.take("a", 0);
    limiter.take("b", 1);
    limiter.take("c", 2);
    // "a" was forgotten: it is reported again at once; "c" is still remembered.
    expect(limiter.take("a", 3)).toBe(0);
    expect(limiter.take("c", 4)).toBeUndefined();
  });
});
