import { describe, expect, it } from "vitest";
import type { PodReading } from "../health/pod-status-reader.ts";
import { pingerReadings, podObservations } from "./readings.ts";

const at = new Date("2026-12-01T00:00:00Z");
const tls = {
  certificate: { sha256Fingerprint: "leaf" },
  trustBundle: [{ sha256Fingerprint: "ca1" }, { sha256Fingerprint: "ca2" }],
};
const window = { sent: 10, succeeded: 10 };

describe("podObservations", () => {
  it("gives the CA rotation each pod's loaded trust and leaf, and how many pods run", () => {
    const pods: PodReading[] = [
      { pod: "p", component: "ponger", at, status: { tls } },
      { pod: "q", component: "pinger", at, error: "connection refused" },
      { pod: "r", component: "pinger", at, status: { window } },
    ];
    expect(podObservations({ pods, running: { ponger: 1, pinger: 3 } })).toEqual({
      running: 4,
      observations: [
        { pod: "p", component: "ponger", trust: ["ca1", "ca2"], leaf: "leaf" },
        { pod: "q", component: "pinger", error: "connection refused" },
        { pod: "r", component: "pinger", error: "its /status reports no TLS material" },
      ],
    });
  });
});

describe("pingerReadings", () => {
  it("keeps the pingers, with their ping window or why there is none", () => {
    const pods: PodReading[] = [
      { pod: "p", component: "ponger", at, status: { tls } },
      { pod: "q", component: "pinger", at, status: { tls, window } },
      { pod: "r", component: "pinger", at, status: { tls } },
      { pod: "s", component: "pinger", at, error: "timeout" },
    ];
    expect(pingerReadings({ pods, running: { ponger: 1, pinger: 3 } })).toEqual([
      { pod: "q", at, report: { tls, window } },
      { pod: "r", at, error: "its /status has no ping window" },
      { pod: "s", at, error: "timeout" },
    ]);
  });
});
