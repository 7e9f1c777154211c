import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type CaRotationInput, decideCaRotation, type PodObservation } from "./ca-rotation.ts";

const now = new Date("2026-11-21T12:00:00.000Z");
const ago = (s: number) => new Date(now.getTime() - s * 1000).toISOString();
const step = 120_000; // --ca-rotation-step
const maxWait = 600_000;

// CAs and leaves by name; their "fingerprints" are the names.
const C1 = "-----C1-----";
const C2 = "-----C2-----";
const newCa = "NEW";
const leavesOfNew = {
  ponger: { fingerprint: "ponger@NEW", fromCurrentCa: true },
  pinger: { fingerprint: "pinger@NEW", fromCurrentCa: true },
};
const leavesOfOld = {
  ponger: { fingerprint: "ponger@C1", fromCurrentCa: false },
  pinger: { fingerprint: "pinger@C1", fromCurrentCa: false },
};

const ponger = (trust: string[], leaf: string, pod = "demo-ponger-a"): PodObservation => ({
  pod,
  component: "ponger",
  trust,
  leaf,
});
const pinger = (trust: string[], leaf: string, pod = "demo-pinger-a"): PodObservation => ({
  pod,
  component: "pinger",
  trust,
  leaf,
});
const pingerTrustingBoth = pinger([newCa, "C1"], "pinger@C1");
const pingerWithNewLeaf = pinger([newCa, "C1"], "pinger@NEW");
const trustingBoth = [ponger([newCa, "C1"], "ponger@C1"), pingerTrustingBoth];
const loadedNew = [ponger([newCa, "C1"], "ponger@NEW"), pingerWithNewLeaf];
const trustingOld = [ponger(["C1"], "ponger@C1"), pinger(["C1"], "pinger@C1")];

function input(overrides: Partial<CaRotationInput> = {}): CaRotationInput {
  return {
    now,
    minDwellMs: step,
    maxWaitMs: maxWait,
    stored: { previous: [] },
    caFingerprint: newCa,
    leaves: leavesOfOld,
    pods: [],
    running: 0,
    mutualTls: true,
    ...overrides,
  };
}

const inStep = (phase: string, seconds: number, previous = [C1]) => ({
  phase,
  since: ago(seconds),
  previous,
});

describe("CA rotation", () => {
  it.each([
    {
      name: "no rotation: stays idle",
      given: input(),
      phase: undefined,
      previous: [],
      advanced: false,
    },
    {
      name: "a new CA starts it: trust both",
      given: input({ replaced: { carryOver: [C1] }, pods: trustingOld, running: 2 }),
      phase: "TrustBoth",
      previous: [C1],
      advanced: true,
      since: now,
    },
    {
      name: "a new CA with nothing to carry over (first CA): no rotation",
      given: input({ replaced: { carryOver: [] } }),
      phase: undefined,
      previous: [],
    },
    {
      name: "trust both, before the dwell: waits, looks again when it ends",
      given: input({ stored: inStep("TrustBoth", 60), pods: trustingBoth, running: 2 }),
      phase: "TrustBoth",
      advanced: false,
      nextCheck: new Date(Date.parse(ago(60)) + step),
    },
    {
      name: "trust both, dwell over, every pod trusts the new CA: re-issue leaves",
      given: input({ stored: inStep("TrustBoth", 121), pods: trustingBoth, running: 2 }),
      phase: "IssueLeaves",
      previous: [C1],
      advanced: true,
      since: now,
    },
    {
      name: "trust both, dwell over, a pinger still has the old bundle: waits and names it",
      given: input({
        stored: inStep("TrustBoth", 300),
        pods: [ponger([newCa, "C1"], "ponger@C1"), pinger(["C1"], "pinger@C1")],
        running: 2,
      }),
      phase: "TrustBoth",
      waitingFor: ["demo-pinger-a (has not loaded the new CA)"],
      overdue: false,
    },
    {
      name: "trust both, past the maximum wait: still waits, overdue, names the pod",
      given: input({ stored: inStep("TrustBoth", 601), pods: [pinger(["C1"], "pinger@C1")], running: 1 }),
      phase: "TrustBoth",
      waitingFor: ["demo-pinger-a (has not loaded the new CA)"],
      overdue: true,
      nextCheck: new Date(now.getTime() + step),
    },
    {
      name: "an unreadable pod holds the step back",
      given: input({
        stored: inStep("TrustBoth", 300),
        pods: [
          { pod: "demo-ponger-a", component: "ponger", error: "connect ECONNREFUSED" },
          pingerTrustingBoth,
        ],
        running: 2,
      }),
      phase: "TrustBoth",
      waitingFor: ["demo-ponger-a (unreadable: connect ECONNREFUSED)"],
    },
    {
      name: "a running pod not read yet holds the step back",
      given: input({ stored: inStep("TrustBoth", 300), pods: trustingBoth, running: 3 }),
      phase: "TrustBoth",
      waitingFor: ["1 pod(s) not read yet"],
    },
    {
      name: "no pod to ask: advances on time",
      given: input({ stored: inStep("TrustBoth", 121) }),
      phase: "IssueLeaves",
      basis: "time",
      advanced: true,
    },
    {
      name: "re-issue leaves, the Secrets still hold old leaves: waits for them first",
      given: input({ stored: inStep("IssueLeaves", 300), leaves: leavesOfOld, pods: loadedNew, running: 2 }),
      phase: "IssueLeaves",
      advanced: false,
    },
    {
      name: "re-issue leaves, a ponger still serves its old certificate: waits",
      given: input({
        stored: inStep("IssueLeaves", 300),
        leaves: leavesOfNew,
        pods: [ponger([newCa, "C1"], "ponger@C1"), pingerWithNewLeaf],
        running: 2,
      }),
      phase: "IssueLeaves",
      waitingFor: ["demo-ponger-a (has not loaded its new certificate)"],
    },
    {
      name: "re-issue leaves, every pod has its new leaf: done, old CAs dropped",
      given: input({ stored: inStep("IssueLeaves", 121), leaves: leavesOfNew, pods: loadedNew, running: 2 }),
      phase: undefined,
      previous: [],
      advanced: true,
    },
    {
      name: "TLS only: the ponger loads no bundle and the pinger no leaf",
      given: input({
        stored: inStep("IssueLeaves", 121),
        leaves: leavesOfNew,
        pods: [ponger([], "ponger@NEW"), pinger([newCa, "C1"], "")],
        running: 2,
        mutualTls: false,
      }),
      phase: undefined,
      advanced: true,
    },
    {
      name: "interrupted: a new CA during trust-both keeps the CA the live leaves are signed by",
      given: input({
        stored: { phase: "TrustBoth", since: ago(10), previous: [C1] },
        replaced: { carryOver: [C2] },
        pods: [ponger([C2, "C1"], "ponger@C1")],
        running: 1,
      }),
      phase: "TrustBoth",
      previous: [C2, C1],
      since: now,
    },
    {
      name: "garbage phase with CAs stored: treated as trust both, dwell restarted",
      given: input({
        stored: { phase: "Banana", since: ago(900), previous: [C1] },
        pods: trustingBoth,
        running: 2,
      }),
      phase: "TrustBoth",
      previous: [C1],
      since: now,
      advanced: false,
    },
    {
      name: "garbage date: the dwell restarts now",
      given: input({
        stored: { phase: "TrustBoth", since: "last tuesday", previous: [C1] },
        pods: trustingBoth,
        running: 2,
      }),
      phase: "TrustBoth",
      since: now,
    },
    {
      name: "a date in the future: the dwell restarts now",
      given: input({ stored: { phase: "IssueLeaves", since: "2030-01-01T00:00:00Z", previous: [C1] } }),
      phase: "IssueLeaves",
      since: now,
    },
    {
      name: "garbage phase and nothing stored: idle",
      given: input({ stored: { phase: "???", since: "???", previous: [] } }),
      phase: undefined,
    },
  ])("$name", ({ given, ...expected }) => {
    const decision = decideCaRotation(given);
    expect(decision.phase).toBe(expected.phase);
    if ("previous" in expected) expect(decision.previous.map((p) => p.trim())).toEqual(expected.previous);
    if ("advanced" in expected) expect(decision.advanced).toBe(expected.advanced);
    if ("since" in expected) expect(decision.since).toEqual(expected.since);
    if ("waitingFor" in expected) expect(decision.waitingFor).toEqual(expected.waitingFor);
    if ("overdue" in expected) expect(decision.overdue).toBe(expected.overdue);
    if ("basis" in expected) expect(decision.basis).toBe(expected.basis);
    if ("nextCheck" in expected) expect(decision.nextCheck).toEqual(expected.nextCheck);
  });

  it("never throws and never loses a stored CA while rotating, whatever the stored state says", () => {
    fc.assert(
      fc.property(
        fc.option(fc.string(), { nil: undefined }),
        fc.option(fc.string(), { nil: undefined }),
        fc.array(fc.constantFrom(C1, C2), { maxLength: 3 }),
        fc.boolean(),
        (phase, since, previous, replaced) => {
          const decision = decideCaRotation(
            input({
              stored: { phase, since, previous },
              ...(replaced ? { replaced: { carryOver: [C2] } } : {}),
            }),
          );
          expect(Number.isNaN(decision.since.getTime())).toBe(false);
          if (decision.phase !== undefined && !decision.advanced) {
            for (const ca of previous) expect(decision.previous.map((p) => p.trim())).toContain(ca.trim());
          }
        },
      ),
    );
  });
});
