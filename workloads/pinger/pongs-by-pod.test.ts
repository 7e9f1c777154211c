import { describe, expect, it } from "vitest";
import { PongsByPod } from "./pongs-by-pod.ts";

describe("PongsByPod", () => {
  it("counts pongs per pod", () => {
    const pongs = new PongsByPod();
    pongs.add("a", 0);
    pongs.add("b", 1);
    pongs.add("a", 2);
    expect(pongs.counts()).toEqual({ a: 2, b: 1 });
  });

  it("keeps at most maxPods, dropping the least recently heard", () => {
    const pongs = new PongsByPod(2);
    pongs.add("a", 0);
    pongs.add("b", 1);
    pongs.add("a", 2);
    expect(pongs.add("c", 3)).toEqual(["b"]);
    expect(pongs.counts()).toEqual({ a: 2, c: 1 });
    // A ponger answering with a new name every time cannot grow it.
    for (let i = 0; i < 1000; i++) pongs.add(`random-${i}`, 4 + i);
    expect(Object.keys(pongs.counts())).toHaveLength(2);
  });

  it("drops pods not heard from for the expiry time", () => {
    const pongs = new PongsByPod(64, 1_000);
    pongs.add("old", 0);
    pongs.add("new", 500);
    expect(pongs.add("new", 1_000)).toEqual(["old"]);
    expect(pongs.expire(2_000)).toEqual(["new"]);
    expect(pongs.counts()).toEqual({});
  });
});
