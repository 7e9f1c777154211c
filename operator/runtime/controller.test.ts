import { Registry } from "prom-client";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createLogger } from "../../lib/logger.ts";
import { metricValue } from "../../workloads/testing/tls-client.ts";
import { Controller, type ControllerOptions, type ReconcileRequest } from "./controller.ts";
import { WorkQueue } from "./work-queue.ts";

// Every wait here is on fake timers: a requeue or a backoff happens when the clock is advanced to it.
beforeEach(() => {
  vi.useFakeTimers();
});
const running: Controller[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((c) => c.stop()));
  vi.useRealTimers();
});

async function start(
  options: Partial<ControllerOptions> & Pick<ControllerOptions, "reconcile">,
  queued: readonly string[] = [],
) {
  const registry = new Registry();
  const lines: Record<string, unknown>[] = [];
  const controller = new Controller({
    name: "test",
    logger: createLogger("controller-test", {
      write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>),
    }),
    registry,
    queue: new WorkQueue({ baseMs: 20, maxMs: 100, jitter: 0 }),
    ...options,
  });
  running.push(controller);
  for (const key of queued) controller.queue.add(key, "queued before start");
  await controller.start();
  const count = async (result: string) =>
    metricValue(
      await registry.metrics(),
      `pingpong_operator_reconcile_total{controller="test",result="${result}"}`,
    ) ?? 0;
  return { controller, count, lines };
}

/** Lets every worker run what is ready now, without moving the clock. */
const settle = () => vi.advanceTimersByTimeAsync(0);

describe("Controller", () => {
  it("reconciles each queued key, once for keys queued again while waiting", async () => {
    const seen: string[] = [];
    // Queued before the workers start: all three are waiting at once.
    const { count } = await start(
      {
        concurrency: 1,
        reconcile: ({ key }) => {
          seen.push(key);
          return Promise.resolve({});
        },
      },
      ["ns/a", "ns/b", "ns/a"],
    );
    await settle();
    expect(seen.sort()).toEqual(["ns/a", "ns/b"]);
    expect(await count("success")).toBe(2);
  });

  it("looks at a key again exactly after requeueAfterMs, saying why, and labels an outcome", async () => {
    const requests: ReconcileRequest[] = [];
    const { controller, count } = await start({
      reconcile: (request) => {
        requests.push(request);
        return Promise.resolve(
          requests.length === 1
            ? { requeueAfterMs: 30_000, requeueReason: "renewal due", outcome: "invalid_spec" }
            : {},
        );
      },
    });
    controller.queue.add("ns/a", "PingPongPair ns/a added");
    await settle();
    await vi.advanceTimersByTimeAsync(29_999);
    expect(requests).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(requests.map((r) => r.reason)).toEqual(["PingPongPair ns/a added", "renewal due"]);
    expect(await count("invalid_spec")).toBe(1);
    expect(await count("success")).toBe(1);
  });

  it("retries a failed reconcile with doubling backoff, counting it by the error's label", async () => {
    const requests: ReconcileRequest[] = [];
    const { controller, count } = await start({
      reconcile: (request) => {
        requests.push(request);
        return requests.length < 3 ? Promise.reject(new Error("conflict")) : Promise.resolve({});
      },
      errorLabel: () => "api_409",
    });
    controller.queue.add("ns/a");
    await settle();
    // Backoff 20 ms after the first failure, 40 ms after the second.
    await vi.advanceTimersByTimeAsync(19);
    expect(requests).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(requests).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(39);
    expect(requests).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(requests.map((r) => r.reason)).toEqual([
      "requested",
      "retry 1 after an error",
      "retry 2 after an error",
    ]);
    expect(await count("api_409")).toBe(2);
    expect(await count("success")).toBe(1);
  });

  it("follows the error policy's fixed requeue instead of backing off", async () => {
    let calls = 0;
    const { controller } = await start({
      reconcile: () => (++calls < 2 ? Promise.reject(new Error("not mine")) : Promise.resolve({})),
      errorPolicy: () => ({ requeueAfterMs: 150 }),
    });
    controller.queue.add("ns/a");
    await settle();
    await vi.advanceTimersByTimeAsync(149);
    expect(calls).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toBe(2);
  });

  it("never runs two reconciles of one key at once", async () => {
    let active = 0;
    let most = 0;
    let calls = 0;
    const { controller } = await start({
      concurrency: 4,
      reconcile: async () => {
        active++;
        most = Math.max(most, active);
        calls++;
        await new Promise((r) => setTimeout(r, 20));
        active--;
        return {};
      },
    });
    for (let i = 0; i < 10; i++) {
      controller.queue.add("ns/a");
      await vi.advanceTimersByTimeAsync(5);
    }
    await vi.advanceTimersByTimeAsync(100);
    expect(active).toBe(0);
    expect(controller.queue.depth).toBe(0);
    expect(most).toBe(1);
    // Adds every 5 ms for 50 ms, each run 20 ms: runs start at 0, 20, 40 and 60 ms, the adds made
    // during one run waiting as one.
    expect(calls).toBe(4);
  });

  it("gives each reconcile its own ID, and logs it with the key and the reason", async () => {
    const requests: ReconcileRequest[] = [];
    const { controller, lines } = await start({
      reconcile: (request) => {
        requests.push(request);
        request.log.info("doing the work");
        return Promise.reject(new Error("boom"));
      },
      errorPolicy: () => ({ requeueAfterMs: 1_000 }),
    });
    controller.queue.add("ns/a", "Deployment ns/a-ponger modified");
    await settle();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(requests).toHaveLength(2);
    const [first, second] = requests;
    expect(first?.id).toMatch(/^[0-9a-f]{8}$/);
    expect(second?.id).not.toBe(first?.id);
    const work = lines.filter((l) => l.msg === "doing the work");
    expect(work.map((l) => [l.key, l.reconcileID, l.reason])).toEqual([
      ["ns/a", first?.id, "Deployment ns/a-ponger modified"],
      ["ns/a", second?.id, "retry after an error"],
    ]);
    const failed = lines.find((l) => l.msg === "Reconcile failed");
    expect(failed).toMatchObject({ key: "ns/a", reconcileID: first?.id, error: "boom" });
  });
});
