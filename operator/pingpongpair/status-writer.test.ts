import { describe, expect, it } from "vitest";
import type { PingPongPair, PingPongPairStatus } from "../api/types.ts";
import { statusChanged } from "./status-writer.ts";

describe("statusChanged", () => {
  const status: PingPongPairStatus = {
    observedGeneration: 2,
    conditions: [{ type: "Ready", status: "True", reason: "Ready", message: "ok", lastTransitionTime: "t" }],
  };
  const pair = (s?: PingPongPairStatus): PingPongPair => ({
    metadata: { name: "demo" },
    ...(s ? { status: s } : {}),
  });

  it("is false for the same status in another field order, or with undefined fields", () => {
    const reordered = { conditions: status.conditions, observedGeneration: 2 } as PingPongPairStatus;
    expect(statusChanged(pair(reordered), { ...status, ca: undefined })).toBe(false);
  });

  it("is true for a new pair, and for any changed value", () => {
    expect(statusChanged(pair(), status)).toBe(true);
    expect(statusChanged(pair(status), { ...status, observedGeneration: 3 })).toBe(true);
  });
});
