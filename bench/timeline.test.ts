import type { V1Deployment, V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import type { PingPongPair } from "../operator/api/types.ts";
import { reached } from "./timeline.ts";

const pod = (component: string, status: V1Pod["status"]): V1Pod => ({
  metadata: { labels: { "app.kubernetes.io/component": component } },
  status,
});
const scheduled = { conditions: [{ type: "PodScheduled", status: "True" }] };
const running = {
  ...scheduled,
  containerStatuses: [
    { name: "c", image: "i", imageID: "", ready: false, restartCount: 0, state: { running: {} } },
  ],
};
const ready = {
  ...running,
  conditions: [
    { type: "PodScheduled", status: "True" },
    { type: "Ready", status: "True" },
  ],
};
const deployments: V1Deployment[] = [{}, {}];

describe("the phases a pair has reached", () => {
  it("counts a pod phase only when both the ponger and the pinger are in it", () => {
    const phases = reached(undefined, deployments, [pod("ponger", ready), pod("pinger", scheduled)], false);
    expect([...phases]).toEqual(["Deployments written", "pods scheduled"]);
  });

  it("reads certificates, status.ping, PingHealthy and Ready from the pair", () => {
    const pair: PingPongPair = {
      apiVersion: "pingpong.dev/v1alpha1",
      kind: "PingPongPair",
      metadata: { name: "p" },
      spec: {},
      status: {
        conditions: [
          {
            type: "CertificatesReady",
            status: "True",
            reason: "Issued",
            message: "",
            lastTransitionTime: "",
          },
          { type: "PingHealthy", status: "False", reason: "NoPingsYet", message: "", lastTransitionTime: "" },
        ],
        ping: { sent: 2 },
      },
    };
    const phases = reached(pair, deployments, [pod("ponger", ready), pod("pinger", ready)], true);
    expect(phases.has("certificates issued")).toBe(true);
    expect(phases.has("pods Ready")).toBe(true);
    expect(phases.has("first pong seen by a pinger")).toBe(true);
    expect(phases.has("status.ping written")).toBe(true);
    expect(phases.has("PingHealthy True")).toBe(false);
    expect(phases.has("Ready")).toBe(false);
  });
});
