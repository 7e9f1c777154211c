import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { V1Pod } from "@kubernetes/client-node";
import { afterEach, describe, expect, it } from "vitest";
import { eventually } from "../../controlplane/testing.ts";
import { createLogger } from "../../lib/logger.ts";
import {
  drillInjectedSince,
  podMeaning,
  type PodReading,
  PodStatusReader,
  podTarget,
  readingsChanged,
  slimPod,
} from "./pod-status-reader.ts";

const pod = (
  overrides: { phase?: string; ip?: string; component?: string; port?: number; ready?: boolean } = {},
): V1Pod => ({
  metadata: {
    name: "demo-pinger-abc",
    namespace: "ns",
    labels: {
      "app.kubernetes.io/instance": "demo",
      "app.kubernetes.io/component": overrides.component ?? "pinger",
    },
    managedFields: [{ manager: "kubelet" }],
  },
  spec: {
    containers: [
      {
        name: "pinger",
        image: "x",
        env: [{ name: "A", value: "b" }],
        ports: [{ name: "metrics", containerPort: overrides.port ?? 9090 }],
      },
    ],
  },
  status: {
    phase: overrides.phase ?? "Running",
    podIP: overrides.ip ?? "10.245.0.7",
    conditions: [
      { type: "PodScheduled", status: "True" },
      { type: "Ready", status: overrides.ready ? "True" : "False" },
    ],
  },
});

describe("where a pod's /status is", () => {
  it("is its IP and its metrics port, for the pair its labels name", () => {
    expect(podTarget(pod())).toEqual({
      pairKey: "ns/demo",
      component: "pinger",
      url: "http://10.245.0.7:9090/status",
      ready: false,
    });
    expect(podTarget(pod({ ready: true }))?.ready).toBe(true);
    expect(podTarget(pod({ ip: "fd00::7" }))?.url).toBe("http://[fd00::7]:9090/status");
  });

  it("is nowhere for a pod that is not running, or not a workload", () => {
    expect(podTarget(pod({ phase: "Pending" }))).toBeUndefined();
    expect(podTarget(pod({ ip: "" }))).toBeUndefined();
    expect(podTarget(pod({ component: "ca" }))).toBeUndefined();
  });

  it("survives slimming: the cache keeps only what locating needs", () => {
    const slim = slimPod(pod());
    expect(podTarget(slim)).toEqual(podTarget(pod()));
    expect(slim.metadata?.managedFields).toBeUndefined();
    expect(slim.spec?.containers[0]?.env).toBeUndefined();
    expect(slim.status?.conditions).toEqual([{ type: "Ready", status: "False" }]);
    expect(podTarget(slimPod(pod({ ready: true })))?.ready).toBe(true);
  });
});

describe("when a pair's pods are read", () => {
  const stops: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop();
  });

  it("once at first, then at once when a pod turns Ready, not at the next interval", async () => {
    let reads = 0;
    const server = createServer((_req, res) => {
      reads++;
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    stops.push(() => new Promise((resolve) => server.close(() => resolve())));
    const port = (server.address() as AddressInfo).port;
    let pods = [pod({ ip: "127.0.0.1", port, ready: false })];
    const changed: string[] = [];
    const reader = new PodStatusReader({
      intervalMs: 600_000,
      pods: () => pods,
      onChange: (key) => changed.push(key),
      logger: createLogger("reader-test", { write: () => undefined }),
      random: () => 0,
    });
    reader.start();
    stops.push(() => reader.stop());
    await eventually("the first read", () => Promise.resolve(reads === 1 ? true : undefined), 10_000);
    expect(changed).toEqual(["ns/demo"]);
    pods = [pod({ ip: "127.0.0.1", port, ready: true })];
    // The interval is ten minutes: only the pod turning Ready can bring the second read.
    await eventually(
      "a read after the pod turned Ready",
      () => Promise.resolve(reads === 2 ? true : undefined),
      10_000,
    );
    expect(reader.readingsOf("ns", "demo").pods).toHaveLength(1);
  });
});

describe("whether readings say something new", () => {
  const reading = (window: Record<string, unknown>, extra: Record<string, unknown> = {}): PodReading => ({
    pod: "p1",
    component: "pinger",
    at: new Date(0),
    status: {
      lastPongTime: new Date(1_000_000).toISOString(),
      window: { sent: 60, succeeded: 60, failed: 0, latencyP99Ms: 3, ...window },
      pongsByPod: { a: 5 },
      tls: { certificate: { sha256Fingerprint: "L1" }, trustBundle: [{ sha256Fingerprint: "C1" }] },
      ...extra,
    },
  });
  const meanings = (r: PodReading) => new Map([[r.pod, podMeaning(r)]]);
  const base = meanings(reading({}));

  it("not for noise, nor for drift that has not yet doubled P99", () => {
    expect(
      readingsChanged(base, meanings(reading({ sent: 61, succeeded: 61, latencyP99Ms: 2.1 })), 300_000),
    ).toBe(false);
    expect(readingsChanged(base, meanings(reading({ latencyP99Ms: 5.9 })), 300_000)).toBe(false);
  });

  it("for a failed ping, a doubled P99, another trust bundle, an unreadable pod, a pod more", () => {
    expect(readingsChanged(base, meanings(reading({ failed: 1, succeeded: 59 })), 300_000)).toBe(true);
    expect(readingsChanged(base, meanings(reading({ latencyP99Ms: 6.1 })), 300_000)).toBe(true);
    const reloaded = reading(
      {},
      { tls: { certificate: { sha256Fingerprint: "L1" }, trustBundle: [{ sha256Fingerprint: "C2" }] } },
    );
    expect(readingsChanged(base, meanings(reloaded), 300_000)).toBe(true);
    expect(
      readingsChanged(
        base,
        meanings({ pod: "p1", component: "pinger", at: new Date(0), error: "timeout" }),
        300_000,
      ),
    ).toBe(true);
    expect(readingsChanged(base, new Map([...base, ["p2", podMeaning(reading({}))]]), 300_000)).toBe(true);
  });

  it("for every read that saw more pings while a starting pinger's window fills, not once it is full", () => {
    const starting = (sent: number) => meanings(reading({ sent, succeeded: sent }, { sent }));
    expect(readingsChanged(starting(3), starting(13), 300_000)).toBe(true);
    expect(readingsChanged(starting(13), starting(13), 300_000)).toBe(false);
    // Full: pings have left the window (the pinger sent more than it holds).
    const full = (sent: number) => meanings(reading({ sent: 60, succeeded: 60 }, { sent }));
    expect(readingsChanged(full(70), full(80), 300_000)).toBe(false);
  });

  it("for a last pong one refresh period newer", () => {
    const later = reading({}, { lastPongTime: new Date(1_000_000 + 300_000).toISOString() });
    expect(readingsChanged(base, meanings(later), 300_000)).toBe(true);
  });

  it("for a ponger starting or stopping a fire drill's faults", () => {
    const ponger = (drill: unknown): PodReading => ({
      pod: "q1",
      component: "ponger",
      at: new Date(0),
      status: { tls: { certificate: null, trustBundle: [] }, drill },
    });
    const calm = meanings(ponger(null));
    expect(readingsChanged(calm, meanings(ponger({ active: true })), 300_000)).toBe(true);
    expect(readingsChanged(calm, meanings(ponger({ active: false })), 300_000)).toBe(false);
    // Since when: the earliest of the pongers injecting, by their own clocks.
    const since = (at: string, pod: string) => ({ ...ponger({ active: true, since: at }), pod });
    expect(
      drillInjectedSince([
        since("2026-12-03T12:00:05Z", "a"),
        since("2026-12-03T12:00:02Z", "b"),
        ponger(null),
      ]),
    ).toBe("2026-12-03T12:00:02.000Z");
    expect(drillInjectedSince([ponger({ active: true, since: "garbage" }), ponger(null)])).toBeUndefined();
  });
});
