/** Names and labels of a pair's children. One place, so builders, reconcile and tests agree. */
import type { PingPongPair } from "../api/types.ts";

export const managedBy = "pingpong-operator";
export const appName = "pingpong";

export type Component = "ponger" | "pinger" | "ca";

export interface ChildNames {
  readonly caSecret: string;
  readonly pongerSecret: string;
  readonly pingerSecret: string;
  readonly pongerConfig: string;
  readonly pingerConfig: string;
  /** Deployment, Service, ServiceAccount, NetworkPolicy and PDB of the ponger. */
  readonly ponger: string;
  /** Deployment, ServiceAccount and NetworkPolicy of the pinger. */
  readonly pinger: string;
}

export function childNames(pair: string): ChildNames {
  return {
    caSecret: `${pair}-ca`,
    pongerSecret: `${pair}-ponger-tls`,
    pingerSecret: `${pair}-pinger-tls`,
    pongerConfig: `${pair}-ponger-config`,
    pingerConfig: `${pair}-pinger-config`,
    ponger: `${pair}-ponger`,
    pinger: `${pair}-pinger`,
  };
}

/** The label that names a child's (and a pod's) pair. */
export const instanceLabel = "app.kubernetes.io/instance";

/** The labels that select a component's pods. Immutable in a Deployment, so never add to them. */
export function selectorLabels(pair: string, component: Component): Record<string, string> {
  return {
    "app.kubernetes.io/name": appName,
    [instanceLabel]: pair,
    "app.kubernetes.io/component": component,
  };
}

export function labels(pair: string, component: Component): Record<string, string> {
  return {
    ...selectorLabels(pair, component),
    "app.kubernetes.io/managed-by": managedBy,
    "app.kubernetes.io/part-of": appName,
  };
}

/** The label selector every informer of children uses. */
export const childSelector = `app.kubernetes.io/managed-by=${managedBy}`;

export function selectorString(pair: string, component: Component): string {
  return Object.entries(selectorLabels(pair, component))
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
}

/** The controller ownerReference: the garbage collector deletes children with their pair. */
export function ownerReference(pair: PingPongPair) {
  return {
    apiVersion: pair.apiVersion ?? "pingpong.dev/v1alpha1",
    kind: pair.kind ?? "PingPongPair",
    name: pair.metadata?.name ?? "",
    uid: pair.metadata?.uid ?? "",
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** The DNS names the ponger's certificate covers: every way its Service can be addressed. */
export function pongerDnsNames(pair: string, namespace: string): string[] {
  const service = childNames(pair).ponger;
  return [
    service,
    `${service}.${namespace}`,
    `${service}.${namespace}.svc`,
    `${service}.${namespace}.svc.cluster.local`,
  ];
}

/** Annotations on the Secrets, recording what the certificates were issued for. */
export const annotations = {
  rotate: "pingpong.dev/rotate",
  rotateCA: "pingpong.dev/rotate-ca",
  caRotationPhase: "pingpong.dev/ca-rotation-phase",
  caRotationSince: "pingpong.dev/ca-rotation-since",
  configHash: "pingpong.dev/config-hash",
} as const;
