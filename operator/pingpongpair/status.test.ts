import type { V1Deployment } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { resolveSpec } from "../api/spec.ts";
import type { PingPongPair } from "../api/types.ts";
import type { PingHealth } from "../health/ping-health.ts";
import type { CertificatesResult } from "./certificates.ts";
import { buildStatus, type StatusInput } from "./status.ts";

const now = new Date("2026-11-21T12:00:00Z");
const pair: PingPongPair = {
  apiVersion: "pingpong.dev/v1alpha1",
  kind: "PingPongPair",
  metadata: { name: "demo", namespace: "ns", generation: 3, uid: "u" },
  spec: {},
};
const spec = resolveSpec(pair, "pingpong-operator:dev");

const certificates: CertificatesResult = {
  secrets: [],
  issued: [],
  status: {
    ca: { serial: "01", notAfter: "2027-11-21T12:00:00.000Z" },
    certificates: {
      ponger: { serial: "02", notAfter: "2026-12-21T12:00:00.000Z" },
      pinger: { serial: "03", notAfter: "2026-12-21T12:00:00.000Z" },
      expires: "2026-12-21T12:00:00.000Z",
    },
  },
  caRotation: undefined,
  caRotationAdvanced: false,
  leavesLoading: [],
  nextCheck: new Date("2026-12-15T12:00:00Z"),
};

const deployment = (ready: number, generation = 1, observed = 1): V1Deployment => ({
  metadata: { generation },
  status: {
    replicas: 1,
    readyReplicas: ready,
    availableReplicas: ready,
    updatedReplicas: ready,
    observedGeneration: observed,
  },
});

const healthy: PingHealth = {
  ping: undefined,
  condition: { status: "True", reason: "Healthy", message: "60 of 60 pings succeeded in the last minute" },
};

const build = (input: Partial<StatusInput>) => buildStatus({ pair, now, ...input });
const condition = (status: ReturnType<typeof buildStatus>, type: string) =>
  status.conditions?.find((c) => c.type === type);

describe("buildStatus", () => {
  it("is Ready when the certificates are issued, every pod is ready and pings are healthy", () => {
    const status = build({
      spec,
      certificates,
      deployments: { ponger: deployment(1), pinger: deployment(1) },
      health: { value: healthy, refreshMs: 300_000 },
    });
    // In the documented order, Ready last.
    expect(status.conditions?.map((c) => [c.type, c.status, c.reason])).toEqual([
      ["CertificatesReady", "True", "Issued"],
      ["WorkloadsAvailable", "True", "Available"],
      ["PingHealthy", "True", "Healthy"],
      ["Ready", "True", "Ready"],
    ]);
    expect(status.observedGeneration).toBe(3);
    expect(
      status.conditions?.every(
        (c) => c.observedGeneration === 3 && c.lastTransitionTime === now.toISOString(),
      ),
    ).toBe(true);
    expect(status.ca?.serial).toBe("01");
    expect(status.ponger).toMatchObject({
      ready: "1/1",
      readyReplicas: 1,
      selector: expect.stringContaining("demo") as string,
    });
  });

  it("says what Ready waits for, first things first", () => {
    expect(condition(build({}), "Ready")).toMatchObject({ status: "False", reason: "CertificatesNotReady" });
    expect(condition(build({}), "PingHealthy")).toMatchObject({ status: "Unknown", reason: "NotMeasured" });
    const waiting = build({
      spec,
      certificates,
      deployments: { ponger: deployment(0), pinger: deployment(1) },
    });
    expect(condition(waiting, "Ready")).toMatchObject({
      status: "False",
      reason: "WorkloadsUnavailable",
      message: "waiting for pods: ponger 0/1 ready, pinger 1/1 ready",
    });
    expect(condition(waiting, "WorkloadsAvailable")?.reason).toBe("Progressing");
    const missing = build({ spec, certificates, deployments: {} });
    expect(condition(missing, "WorkloadsAvailable")?.reason).toBe("Missing");
    // A Deployment whose controller has not seen its latest generation is not available yet.
    const stale = build({
      spec,
      certificates,
      deployments: { ponger: deployment(1, 2, 1), pinger: deployment(1) },
    });
    expect(condition(stale, "WorkloadsAvailable")?.status).toBe("False");
    const unhealthy = build({
      spec,
      certificates,
      deployments: { ponger: deployment(1), pinger: deployment(1) },
      health: {
        value: {
          ping: undefined,
          condition: { status: "False", reason: "PingsFailing", message: "3 of 60 failed" },
        },
        refreshMs: 300_000,
      },
    });
    expect(condition(unhealthy, "Ready")).toMatchObject({
      reason: "PingUnhealthy",
      message: "ping health: 3 of 60 failed",
    });
  });

  it("puts a problem in Ready, keeping what was known", () => {
    const first = build({
      spec,
      certificates,
      deployments: { ponger: deployment(1), pinger: deployment(1) },
    });
    const status = buildStatus({
      pair: { ...pair, status: first },
      now: new Date(now.getTime() + 60_000),
      problem: { reason: "InvalidSpec", message: "spec.ponger.replicas must be at least 1" },
    });
    expect(condition(status, "Ready")).toMatchObject({ status: "False", reason: "InvalidSpec" });
    expect(condition(status, "CertificatesReady")?.status).toBe("True");
    expect(status.ca?.serial).toBe("01");
  });

  it("keeps lastTransitionTime while a condition's status stays, so an unchanged pair writes nothing new", () => {
    const input = { spec, certificates, deployments: { ponger: deployment(1), pinger: deployment(1) } };
    const first = build(input);
    const again = buildStatus({
      pair: { ...pair, status: first },
      now: new Date(now.getTime() + 3_600_000),
      ...input,
    });
    expect(again).toEqual(first);
  });

  it("tells a CA rotation and who it waits for", () => {
    const rotating = build({
      spec,
      certificates: {
        ...certificates,
        caRotation: {
          phase: "TrustBoth",
          since: now,
          waitingFor: ["demo-ponger-1"],
          overdue: true,
          basis: "pods",
        },
      },
    });
    expect(condition(rotating, "CertificatesReady")).toMatchObject({
      reason: "RotationStuck",
      message: expect.stringContaining("waiting for demo-ponger-1") as string,
    });
  });
});
