/**
 * The PingPongPair resource in TypeScript. crds/pingpong.dev_pingpongpairs.yaml is the source of
 * truth; crd.test.ts fails when these types and the CRD's schema disagree.
 */
import type {
  KubernetesObject,
  V1Affinity,
  V1ResourceRequirements,
  V1Toleration,
  V1TopologySpreadConstraint,
} from "@kubernetes/client-node";

export const group = "pingpong.dev";
export const version = "v1alpha1";
export const apiVersion = `${group}/${version}`;
export const kind = "PingPongPair";
export const plural = "pingpongpairs";

export type TlsMode = "MutualTLS" | "TLS";
export type KeySize = 2048 | 3072 | 4096;

export interface Resources {
  requests?: Record<string, string | number>;
  limits?: Record<string, string | number>;
}

/**
 * Where a component's pods may run: PodSpec's own fields, passed to the pods as written (the CRD's
 * schema for them is PodSpec's, hack/crd/placement-schema.ts). A field left out gets the
 * operator's default (children.ts); one given replaces it.
 */
/** The placement fields, in the order the CRD lists them. */
export const placementFields = [
  "nodeSelector",
  "tolerations",
  "affinity",
  "topologySpreadConstraints",
  "priorityClassName",
] as const;
export type PlacementField = (typeof placementFields)[number];

export interface Placement {
  nodeSelector?: Record<string, string>;
  tolerations?: V1Toleration[];
  affinity?: V1Affinity;
  topologySpreadConstraints?: V1TopologySpreadConstraint[];
  priorityClassName?: string;
}

export interface PingPongPairSpec {
  image?: string;
  ponger?: { replicas?: number; port?: number; resources?: Resources } & Placement;
  pinger?: Placement & {
    replicas?: number;
    interval?: string;
    timeout?: string;
    successThreshold?: number;
    resources?: Resources;
  };
  tls?: {
    mode?: TlsMode;
    keySize?: KeySize;
    caDuration?: string;
    certDuration?: string;
    renewBefore?: string;
    rotate?: string;
    rotateCA?: string;
  };
  networkPolicy?: { enabled?: boolean };
  drill?: Drill;
}

/** A fire drill: faults the ponger injects into the pair's own pings until `until`. */
export interface Drill {
  abortRatio?: number;
  abortStatus?: number;
  delayRatio?: number;
  delay?: string;
  refuseClientCertificates?: boolean;
  until: string;
}

export type DrillState = "Running" | "Ended" | "Refused";

export interface DrillStatus {
  state?: DrillState;
  faults?: string;
  until?: string;
  message?: string;
  startedAt?: string;
  injectingPongers?: number;
  injectingSince?: string;
}

export type ConditionStatus = "True" | "False" | "Unknown";

export interface Condition {
  type: string;
  status: ConditionStatus;
  observedGeneration?: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

export interface CertificateStatus {
  serial?: string;
  notBefore?: string;
  notAfter?: string;
  renewalTime?: string;
  sha256Fingerprint?: string;
}

export interface PingPongPairStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  ca?: CertificateStatus;
  certificates?: { ponger?: CertificateStatus; pinger?: CertificateStatus; expires?: string };
  ponger?: { replicas?: number; readyReplicas?: number; selector?: string; ready?: string };
  pinger?: { replicas?: number; readyReplicas?: number; ready?: string };
  ping?: {
    lastPongTime?: string;
    sent?: number;
    succeeded?: number;
    failed?: number;
    successRatio?: number;
    latencyP50Ms?: number;
    latencyP99Ms?: number;
    success?: string;
    latencyP99?: string;
    pongsByPod?: Record<string, number>;
    paths?: { pingerNode?: string; pongerNode?: string; pongs?: number }[];
    pathsSummary?: string;
    failuresByPingerNode?: Record<string, number>;
    windowSeconds?: number;
    failuresByReason?: Record<string, number>;
    pingers?: number;
    worstPinger?: { pod?: string; successRatio?: number; latencyP99Ms?: number };
  };
  drill?: DrillStatus;
}

export interface PingPongPair extends KubernetesObject {
  spec?: PingPongPairSpec;
  status?: PingPongPairStatus;
}

/** Condition types, as constants so a typo is a compile error. */
export const conditionTypes = {
  certificatesReady: "CertificatesReady",
  workloadsAvailable: "WorkloadsAvailable",
  pingHealthy: "PingHealthy",
  ready: "Ready",
} as const;

/** The defaults the CRD applies; also applied by the operator to objects stored before a default existed. */
export const specDefaults = {
  ponger: { replicas: 1, port: 8443 },
  pinger: { replicas: 1, interval: "1s", timeout: "2s", successThreshold: 0.95 },
  tls: { mode: "MutualTLS" as TlsMode, keySize: 2048 as KeySize, caDuration: "8760h", certDuration: "24h" },
  networkPolicy: { enabled: true },
  drill: { abortStatus: 503 },
} as const;

export type { V1ResourceRequirements };
