import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { podMeaning, type PodReading, podTarget, readingsChanged, slimPod } from "./pod-status-reader.ts";

const pod = (overrides: { phase?: string; ip?: string; component?: string; port?: number } = {}): V1Pod => ({
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
  status: { phase: overrides.phase ?? "Running", podIP: overrides.ip ?? "10.245.0.7", conditions: [] },
});

describe("where a pod's /status is", () => {
  it("is its IP and its metrics port, for the pair its labels name", () => {
    expect(podTarget(pod())).toEqual({
      pairKey: "ns/demo",
      component: "pinger",
      url: "http://10.245.0.7:9090/status",
    });
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
    expect(slim.status?.conditions).toBeUndefined();
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

  it("for a last pong one refresh period newer", () => {
    const later = reading({}, { lastPongTime: new Date(1_000_000 + 300_000).toISOString() });
    expect(readingsChanged(base, meanings(later), 300_000)).toBe(true);
  });
});
