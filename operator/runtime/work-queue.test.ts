import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { WorkQueue } from "./work-queue.ts";

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("WorkQueue", () => {
  it("de-duplicates keys waiting in the queue and keeps their order", async () => {
    const queue = new WorkQueue();
    for (const key of ["a", "b", "a", "c", "b"]) queue.add(key);
    expect(queue.depth).toBe(3);
    expect([await queue.get(), await queue.get(), await queue.get()]).toEqual(["a", "b", "c"]);
  });

  it("never hands out a key that is being processed; re-adds wait for done()", async () => {
    const queue = new WorkQueue();
    queue.add("a");
    const first = await queue.get();
    queue.add("a");
    queue.add("a");
    expect(queue.depth).toBe(0);
    let second: string | undefined;
    void queue.get().then((k) => (second = k));
    await Promise.resolve();
    expect(second).toBeUndefined();
    queue.done(first ?? "");
    await Promise.resolve();
    expect(second).toBe("a");
    expect(queue.inProgress).toBe(1);
  });

  it("does not queue again a key that was not re-added while processing", async () => {
    const queue = new WorkQueue();
    queue.add("a");
    queue.done((await queue.get()) ?? "");
    expect(queue.depth).toBe(0);
  });

  it("gives waiting workers keys as they come", async () => {
    const queue = new WorkQueue();
    const got = [queue.get(), queue.get()];
    queue.add("x");
    queue.add("y");
    expect(await Promise.all(got)).toEqual(["x", "y"]);
  });

  it("backs off exponentially per key, with bounded jitter, until forget()", () => {
    const queue = new WorkQueue({ baseMs: 100, maxMs: 1_000, jitter: 0.5 }, () => 1);
    expect([1, 2, 3, 4, 5].map(() => queue.addRateLimited("a"))).toEqual([150, 300, 600, 1_200, 1_500]);
    expect(queue.addRateLimited("b")).toBe(150);
    queue.forget("a");
    expect(queue.addRateLimited("a")).toBe(150);
    const noJitter = new WorkQueue({ baseMs: 100, maxMs: 1_000, jitter: 0.5 }, () => 0);
    expect(noJitter.addRateLimited("a")).toBe(100);
  });

  it("adds after the delay, keeping the earliest schedule per key", async () => {
    const queue = new WorkQueue();
    queue.addAfter("a", 5_000);
    queue.addAfter("a", 1_000);
    queue.addAfter("a", 9_000);
    vi.advanceTimersByTime(999);
    expect(queue.depth).toBe(0);
    vi.advanceTimersByTime(1);
    expect(queue.depth).toBe(1);
    expect(await queue.get()).toBe("a");
    vi.advanceTimersByTime(10_000);
    expect(queue.depth).toBe(0);
  });

  it("waits longer than setTimeout's limit by re-arming", () => {
    const queue = new WorkQueue();
    const thirtyDays = 30 * 86_400_000;
    queue.addAfter("a", thirtyDays);
    vi.advanceTimersByTime(thirtyDays - 1_000);
    expect(queue.depth).toBe(0);
    vi.advanceTimersByTime(1_000);
    expect(queue.depth).toBe(1);
  });

  it("releases waiting workers and ignores new keys after shutDown", async () => {
    const queue = new WorkQueue();
    const waiting = queue.get();
    queue.addAfter("later", 1_000);
    queue.shutDown();
    expect(await waiting).toBeUndefined();
    queue.add("a");
    vi.advanceTimersByTime(2_000);
    expect(queue.depth).toBe(0);
    expect(await queue.get()).toBeUndefined();
  });

  it("tells the worker why a key runs: the first reason given while it waited", async () => {
    const queue = new WorkQueue();
    queue.add("a", "PingPongPair ns/a added");
    queue.add("a", "Secret ns/a-ca modified");
    const key = (await queue.get()) ?? "";
    expect(queue.reasonOf(key)).toBe("PingPongPair ns/a added");
    // Added while processing: it runs again after done(), for the reason it was added then.
    queue.add("a", "Pod ns/a-pinger-x modified");
    expect(queue.reasonOf(key)).toBe("PingPongPair ns/a added");
    queue.done(key);
    expect(queue.reasonOf((await queue.get()) ?? "")).toBe("Pod ns/a-pinger-x modified");
  });

  it("gives scheduled and retried keys their own reasons", async () => {
    const queue = new WorkQueue({ baseMs: 100, maxMs: 1_000, jitter: 0 });
    queue.addAfter("a", 1_000, "renewal due");
    queue.addRateLimited("b");
    await vi.advanceTimersByTimeAsync(1_000);
    const first = (await queue.get()) ?? "";
    const second = (await queue.get()) ?? "";
    expect([first, queue.reasonOf(first)]).toEqual(["b", "retry 1 after an error"]);
    expect([second, queue.reasonOf(second)]).toEqual(["a", "renewal due"]);
  });
});
