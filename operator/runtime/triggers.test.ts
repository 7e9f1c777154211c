import { describe, expect, it } from "vitest";
import { enqueue, triggerByLabel, triggerOwner, triggerSelf } from "./triggers.ts";
import { WorkQueue } from "./work-queue.ts";

const owned = (controller: boolean, kind = "PingPongPair") => ({
  metadata: {
    name: "demo-ponger",
    namespace: "ns",
    ownerReferences: [{ apiVersion: "pingpong.dev/v1alpha1", kind, name: "demo", uid: "u", controller }],
  },
});

describe("triggers", () => {
  it("triggerSelf queues the object itself, except when it is deleted", () => {
    const trigger = triggerSelf("PingPongPair");
    const pair = { metadata: { name: "demo", namespace: "ns" } };
    expect(trigger("modified", pair)).toEqual({ key: "ns/demo", reason: "PingPongPair ns/demo modified" });
    expect(trigger("deleted", pair)).toBeUndefined();
  });

  it("triggerOwner queues the controlling owner of the given kind, for any change", () => {
    const trigger = triggerOwner("PingPongPair", "Deployment");
    expect(trigger("deleted", owned(true))).toEqual({
      key: "ns/demo",
      reason: "Deployment ns/demo-ponger deleted",
    });
    expect(trigger("added", owned(false))).toBeUndefined();
    expect(trigger("added", owned(true, "ReplicaSet"))).toBeUndefined();
    expect(trigger("added", { metadata: { name: "x", namespace: "ns" } })).toBeUndefined();
  });

  it("triggerByLabel queues the object its label names", () => {
    const trigger = triggerByLabel("app.kubernetes.io/instance", "Pod");
    const pod = {
      metadata: { name: "demo-pinger-1", namespace: "ns", labels: { "app.kubernetes.io/instance": "demo" } },
    };
    expect(trigger("modified", pod)).toEqual({ key: "ns/demo", reason: "Pod ns/demo-pinger-1 modified" });
    expect(trigger("modified", { metadata: { name: "other", namespace: "ns" } })).toBeUndefined();
  });

  it("enqueue adds what a trigger names to the queue, with its reason", async () => {
    const queue = new WorkQueue();
    const onChange = enqueue(queue, triggerOwner("PingPongPair", "Secret"));
    onChange("modified", owned(true));
    onChange("modified", owned(false));
    expect(queue.depth).toBe(1);
    const key = (await queue.get()) ?? "";
    expect([key, queue.reasonOf(key)]).toEqual(["ns/demo", "Secret ns/demo-ponger modified"]);
  });
});
