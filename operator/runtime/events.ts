/**
 * Kubernetes Events about the objects the operator manages (`kubectl describe` shows them). Repeats
 * of the same event on the same object within ten minutes bump the existing Event's count instead of
 * creating another, as client-go's event correlator does.
 */
import { randomBytes } from "node:crypto";
import type { KubernetesObject } from "@kubernetes/client-node";
import type { Logger } from "../../lib/logger.ts";
import { errorMessage } from "../../lib/logger.ts";
import type { KubeClient } from "./kube-client.ts";
import { resources } from "./resources.ts";

export type EventType = "Normal" | "Warning";

export interface EventRecorder {
  record(object: KubernetesObject, type: EventType, reason: string, message: string): void;
}

interface Seen {
  name: string;
  count: number;
  at: number;
  /** Settles true once the Event exists, false if creating it failed. */
  created: Promise<boolean>;
}

const correlationWindowMs = 10 * 60_000;

export class KubeEventRecorder implements EventRecorder {
  private readonly client: KubeClient;
  private readonly component: string;
  private readonly logger: Logger;
  private readonly seen = new Map<string, Seen>();

  constructor(client: KubeClient, logger: Logger, component = "pingpong-operator") {
    this.client = client;
    this.logger = logger;
    this.component = component;
  }

  record(object: KubernetesObject, type: EventType, reason: string, message: string): void {
    void this.send(object, type, reason, message).catch((error: unknown) => {
      this.logger.warn({ reason, error: errorMessage(error) }, "Could not record an event");
    });
  }

  private async send(
    object: KubernetesObject,
    type: EventType,
    reason: string,
    message: string,
  ): Promise<void> {
    const namespace = object.metadata?.namespace ?? "default";
    const key = `${object.metadata?.uid ?? ""}\u0000${type}\u0000${reason}\u0000${message}`;
    const now = new Date();
    const previous = this.seen.get(key);
    if (previous && now.getTime() - previous.at < correlationWindowMs) {
      previous.count++;
      previous.at = now.getTime();
      // A repeat recorded while the Event is still being created waits for it rather than creating another.
      if (!(await previous.created)) return;
      await this.client.mergePatch(resources.event, namespace, previous.name, {
        count: previous.count,
        lastTimestamp: new Date(previous.at).toISOString(),
      });
      return;
    }
    const name = `${object.metadata?.name ?? "object"}.${randomBytes(8).toString("hex")}`;
    const creating = this.client.create(this.event(object, { name, namespace }, type, reason, message, now));
    const created = creating.then(
      () => true,
      () => false,
    );
    this.seen.set(key, { name, count: 1, at: now.getTime(), created });
    if (this.seen.size > 10_000) {
      for (const [k, v] of this.seen) if (now.getTime() - v.at > correlationWindowMs) this.seen.delete(k);
    }
    try {
      await creating;
    } catch (error) {
      if (this.seen.get(key)?.name === name) this.seen.delete(key);
      throw error;
    }
  }

  private event(
    object: KubernetesObject,
    metadata: { name: string; namespace: string },
    type: EventType,
    reason: string,
    message: string,
    now: Date,
  ): KubernetesObject {
    return {
      apiVersion: "v1",
      kind: "Event",
      metadata,
      involvedObject: {
        apiVersion: object.apiVersion,
        kind: object.kind,
        name: object.metadata?.name,
        namespace: object.metadata?.namespace,
        uid: object.metadata?.uid,
        resourceVersion: object.metadata?.resourceVersion,
      },
      type,
      reason,
      message: message.slice(0, 1024),
      source: { component: this.component },
      reportingComponent: this.component,
      reportingInstance: this.component,
      firstTimestamp: now.toISOString(),
      lastTimestamp: now.toISOString(),
      count: 1,
    } as KubernetesObject;
  }
}
