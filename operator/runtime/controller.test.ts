import { Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { eventually } from "../../controlplane/testing.ts";
import { createLogger } from "../../lib/logger.ts";
import { metricValue } from "../../workloads/testing/tls-client.ts";
import { Controller, type ControllerOptions } from "./controller.ts";
import { WorkQueue } from "./work-queue.ts";

const logger = createLogger("controller-test", { write: () => undefined });
const running: Controller[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((c) => c.stop()));
});

async function start(
  options: Partial<ControllerOptions> & Pick<ControllerOptions, "reconcile">,
  queued: readonly string[] = [],
) {
  const registry = new Registry();
  const controller = new Controller({
    name: "test",
    logger,
    registry,
    // Retries after failures come quickly here.
    queue: new WorkQueue({ baseMs: 20, maxMs: 100, jitter: 0 }),
    ...options,
  });
  running.push(controller);
  for (const key of queued) controller.queue.add(key);
  await controller.start();
  const count = async (result: string) =>
    metricValue(
      await registry.metrics(),
      `pingpong_operator_reconcile_total{controller="test",result="${result}"}`,
    ) ?? 0;
  return { controller, count };
}

describe("Controller", () => {
  it("reconciles each queued key, once for keys queued again while waiting", async () => {
    const seen: string[] = [];
    // Queued before the workers start: all three are waiting at once.
    const { count } = await start(
      {
        concurrency: 1,
        reconcile: (key) => {
          seen.push(key);
          return Promise.resolve({});
        },
      },
      ["ns/a", "ns/b", "ns/a"],
    );
    await eventually("two reconciles", async () => ((await count("success")) === 2 ? true : undefined));
    expect(seen.sort()).toEqual(["ns/a", "ns/b"]);
  });

  it("looks at a key again after requeueAfterMs, and labels an outcome", async () => {
    let calls = 0;
    const { controller, count } = await start({
      reconcile: () => Promise.resolve(++calls === 1 ? { requeueAfterMs: 30, outcome: "invalid_spec" } : {}),
    });
    controller.queue.add("ns/a");
    await eventually("the second reconcile", () => Promise.resolve(calls >= 2 ? true : undefined));
    expect(await count("invalid_spec")).toBe(1);
    expect(await count("success")).toBeGreaterThanOrEqual(1);
  });

  it("retries a failed reconcile with backoff, counting it by the error's label", async () => {
    let calls = 0;
    const { controller, count } = await start({
      reconcile: () => {
        calls++;
        return calls < 3 ? Promise.reject(new Error("conflict")) : Promise.resolve({});
      },
      errorLabel: () => "api_409",
    });
    controller.queue.add("ns/a");
    await eventually("success after two failures", async () =>
      (await count("success")) === 1 ? true : undefined,
    );
    expect(await count("api_409")).toBe(2);
  });

  it("follows the error policy's fixed requeue instead of backing off", async () => {
    const times: number[] = [];
    const { controller } = await start({
      reconcile: () => {
        times.push(Date.now());
        return times.length < 2 ? Promise.reject(new Error("not mine")) : Promise.resolve({});
      },
      errorPolicy: () => ({ requeueAfterMs: 150 }),
    });
    controller.queue.add("ns/a");
    await eventually("the requeued reconcile", () => Promise.resolve(times.length >= 2 ? true : undefined));
    expect((times[1] ?? 0) - (times[0] ?? 0)).toBeGreaterThanOrEqual(140);
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
      await new Promise((r) => setTimeout(r, 5));
    }
    await eventually("the queue drained", () =>
      Promise.resolve(active === 0 && controller.queue.depth === 0 ? true : undefined),
    );
    expect(most).toBe(1);
    expect(calls).toBeGreaterThanOrEqual(2);
  });
});
