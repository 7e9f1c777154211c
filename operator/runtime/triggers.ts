/**
 * Which primary object an informer event is about, as a runtime helper (kube-runtime's
 * `trigger_self` / `trigger_owners`, controller-runtime's `EnqueueRequestForObject` /
 * `EnqueueRequestForOwner`). A trigger maps an event to the key to reconcile and the reason, which
 * the work queue hands to the reconcile's log; `enqueue` wires a trigger to a queue as an onChange.
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import type { ChangeHandler } from "./informer.ts";
import type { WorkQueue } from "./work-queue.ts";

export type Change = Parameters<ChangeHandler<KubernetesObject>>[0];

export interface Triggered {
  readonly key: string;
  readonly reason: string;
}

export type Trigger<T extends KubernetesObject> = (change: Change, object: T) => Triggered | undefined;

function describe(change: Change, object: KubernetesObject): string {
  const { namespace = "", name = "" } = object.metadata ?? {};
  return `${object.kind ?? "object"} ${namespace ? `${namespace}/` : ""}${name} ${change}`;
}

/** The object itself, unless it was deleted (its children go with it through garbage collection). */
export function triggerSelf<T extends KubernetesObject>(kind: string): Trigger<T> {
  return (change, object) => {
    if (change === "deleted") return undefined;
    const { namespace = "", name = "" } = object.metadata ?? {};
    return { key: `${namespace}/${name}`, reason: describe(change, { ...object, kind }) };
  };
}

/** The object's controller owner of kind `ownerKind`, in the object's namespace. */
export function triggerOwner<T extends KubernetesObject>(ownerKind: string, kind: string): Trigger<T> {
  return (change, object) => {
    const owner = object.metadata?.ownerReferences?.find((o) => o.controller && o.kind === ownerKind);
    if (!owner) return undefined;
    return {
      key: `${object.metadata?.namespace ?? ""}/${owner.name}`,
      reason: describe(change, { ...object, kind }),
    };
  };
}

/** The object named by the object's label `label`, in the object's namespace (pods of a Deployment). */
export function triggerByLabel<T extends KubernetesObject>(label: string, kind: string): Trigger<T> {
  return (change, object) => {
    const name = object.metadata?.labels?.[label];
    if (!name) return undefined;
    return {
      key: `${object.metadata?.namespace ?? ""}/${name}`,
      reason: describe(change, { ...object, kind }),
    };
  };
}

/** An informer's onChange that queues what `trigger` names. */
export function enqueue<T extends KubernetesObject>(
  queue: Pick<WorkQueue, "add">,
  trigger: Trigger<T>,
): ChangeHandler<T> {
  return (change, object) => {
    const triggered = trigger(change, object);
    if (triggered) queue.add(triggered.key, triggered.reason);
  };
}
