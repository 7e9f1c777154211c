import { describe, expect, it } from "vitest";
import type { Condition, PingPongPairStatus } from "../api/types.ts";
import { drillEvent, healthEvent, issuanceEvent, problemEvent, rotationEvent } from "./pair-events.ts";

const condition = (
  type: string,
  status: Condition["status"],
  reason: string,
  message = reason,
): Condition => ({
  type,
  status,
  reason,
  message,
  lastTransitionTime: "2026-12-01T00:00:00Z",
});
const withConditions = (...conditions: Condition[]): PingPongPairStatus => ({ conditions });
const certificates = (reason: string, message = reason) =>
  withConditions(condition("CertificatesReady", reason === "Valid" ? "True" : "False", reason, message));
const health = (status: Condition["status"], reason = "Healthy") =>
  withConditions(condition("PingHealthy", status, reason));

describe("issuanceEvent", () => {
  it("names the certificate, its serial and the policy's reason", () => {
    expect(issuanceEvent({ role: "ca", reason: "Missing", message: "no CA stored", serial: "0a" })).toEqual({
      type: "Normal",
      reason: "IssuedCA",
      message: "issued the CA (serial 0a): no CA stored",
    });
    expect(
      issuanceEvent({ role: "pinger", reason: "RenewalDue", message: "due", serial: "0b" }).message,
    ).toBe("issued the pinger certificate (serial 0b): due");
  });
});

describe("rotationEvent", () => {
  it("records each step of a CA rotation, and its end", () => {
    expect(rotationEvent(certificates("Valid"), certificates("RotatingCA", "step 1"), true)).toEqual({
      type: "Normal",
      reason: "CARotationStep",
      message: "step 1",
    });
    expect(rotationEvent(certificates("RotatingCA"), certificates("Valid", "done"), true)).toMatchObject({
      reason: "CARotationDone",
    });
    expect(rotationEvent(certificates("RotationStuck"), certificates("Valid"), true)).toMatchObject({
      reason: "CARotationDone",
    });
  });

  it("records nothing when no step was taken, or outside a rotation", () => {
    expect(rotationEvent(certificates("RotatingCA"), certificates("RotatingCA"), false)).toBeUndefined();
    expect(rotationEvent(certificates("Valid"), certificates("Valid"), true)).toBeUndefined();
    expect(rotationEvent(undefined, undefined, true)).toBeUndefined();
  });

  it("warns once when a step waits past its deadline", () => {
    expect(
      rotationEvent(certificates("RotatingCA"), certificates("RotationStuck", "pod x lags"), false),
    ).toEqual({
      type: "Warning",
      reason: "RotationStuck",
      message: "pod x lags",
    });
    expect(
      rotationEvent(certificates("RotationStuck"), certificates("RotationStuck"), false),
    ).toBeUndefined();
  });
});

describe("healthEvent", () => {
  it("records a change of PingHealthy's status, a Warning when it turns False", () => {
    expect(healthEvent(health("True"), health("False", "PingsFailing"))).toEqual({
      type: "Warning",
      reason: "PingsFailing",
      message: "ping health is False: PingsFailing",
    });
    expect(healthEvent(health("False"), health("True"))).toMatchObject({ type: "Normal", reason: "Healthy" });
  });

  it("records nothing for the same status, or for a new pair's Unknown", () => {
    expect(healthEvent(health("True"), health("True", "StillHealthy"))).toBeUndefined();
    expect(healthEvent(undefined, health("Unknown", "NoPingers"))).toBeUndefined();
  });
});

describe("problemEvent", () => {
  const problem = { reason: "InvalidSpec", message: "spec.pinger.interval: bad" } as const;

  it("warns the first time, and not again while Ready reports the same problem", () => {
    expect(problemEvent(undefined, problem)).toEqual({ type: "Warning", ...problem });
    const reported = withConditions(condition("Ready", "False", problem.reason, problem.message));
    expect(problemEvent(reported, problem)).toBeUndefined();
    expect(problemEvent(reported, { ...problem, message: "another" })).toMatchObject({ message: "another" });
  });
});

describe("drillEvent", () => {
  const drill = (state: "Running" | "Ended" | "Refused", until = "u"): PingPongPairStatus => ({
    drill: { state, until, faults: "abort 50% (503)", message: `drill ${state}` },
  });

  it("records a drill starting, ending or refused, once", () => {
    expect(drillEvent(undefined, drill("Running"))).toEqual({
      type: "Normal",
      reason: "DrillStarted",
      message: "drill Running",
    });
    expect(drillEvent(drill("Running"), drill("Ended"))).toMatchObject({ reason: "DrillEnded" });
    expect(drillEvent(undefined, drill("Refused"))).toMatchObject({
      type: "Warning",
      reason: "DrillRefused",
    });
    expect(drillEvent(drill("Running"), drill("Running"))).toBeUndefined();
    expect(drillEvent(drill("Running"), {})).toBeUndefined();
  });

  it("records a new drill replacing a running one", () => {
    expect(drillEvent(drill("Running", "u1"), drill("Running", "u2"))).toMatchObject({
      reason: "DrillStarted",
    });
  });
});
