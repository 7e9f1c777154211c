import { describe, expect, it } from "vitest";
import type { PingPongPair } from "../api/types.ts";
import { containsAll, strangerConflict } from "./apply.ts";

describe("containsAll", () => {
  it("holds when the live object has every desired field, whatever else the server added", () => {
    const live = { metadata: { name: "a", uid: "u", labels: { x: "1", y: "2" } }, spec: { replicas: 2 } };
    expect(containsAll(live, { metadata: { name: "a", labels: { x: "1" } }, spec: { replicas: 2 } })).toBe(
      true,
    );
  });

  it("fails on a changed value, a missing field, or an array of another length or order", () => {
    const live = { spec: { replicas: 2, ports: [{ port: 1 }, { port: 2 }] } };
    expect(containsAll(live, { spec: { replicas: 3 } })).toBe(false);
    expect(containsAll(live, { spec: { paused: false } })).toBe(false);
    expect(containsAll(live, { spec: { ports: [{ port: 1 }] } })).toBe(false);
    expect(containsAll(live, { spec: { ports: [{ port: 2 }, { port: 1 }] } })).toBe(false);
    expect(containsAll(live, { spec: { ports: [{ port: 1 }, { port: 2 }] } })).toBe(true);
  });

  it("ignores fields the builder leaves undefined, and tells objects from arrays and nulls", () => {
    expect(containsAll({ a: 1 }, { a: 1, b: undefined })).toBe(true);
    expect(containsAll([1], { 0: 1 })).toBe(false);
    expect(containsAll(null, { a: 1 })).toBe(false);
    expect(containsAll({ a: null }, { a: null })).toBe(true);
  });
});

describe("strangerConflict", () => {
  const pair: PingPongPair = { metadata: { name: "demo", namespace: "ns", uid: "mine" } };
  const object = (owner?: { uid: string; controller: boolean }) => ({
    kind: "Secret",
    metadata: {
      name: "demo-ca",
      namespace: "ns",
      ownerReferences: owner ? [{ apiVersion: "v1", kind: "PingPongPair", name: "demo", ...owner }] : [],
    },
  });

  it("allows nothing there, or an object this pair controls (a cache that has not caught up)", () => {
    expect(strangerConflict(undefined, pair)).toBeUndefined();
    expect(strangerConflict(object({ uid: "mine", controller: true }), pair)).toBeUndefined();
  });

  it("refuses an object without an owner, or owned by another controller, saying what to do", () => {
    expect(strangerConflict(object(), pair)).toBe(
      "Secret ns/demo-ca already exists and is not managed by this PingPongPair; delete or rename it",
    );
    expect(strangerConflict(object({ uid: "other", controller: true }), pair)).toMatch(/not managed by this/);
    // A pair of the same name that was deleted and created again has another uid.
    expect(strangerConflict(object({ uid: "mine", controller: false }), pair)).toMatch(/not managed by this/);
  });
});
