/**
 * Pure builders for the pair's workload children: same input, same objects, no I/O. Certificates are
 * built by certificates.ts; everything here only references them by Secret name.
 */
import { createHash } from "node:crypto";
import type {
  KubernetesObject,
  V1ConfigMap,
  V1Container,
  V1Deployment,
  V1LabelSelector,
  V1PodDisruptionBudget,
  V1Service,
  V1ServiceAccount,
  V1Volume,
} from "@kubernetes/client-node";
import type { ResolvedSpec } from "../api/spec.ts";
import type { PingPongPair, Placement } from "../api/types.ts";
import type { DrillFile } from "./drill.ts";
import { annotations, childNames, labels, ownerReference, selectorLabels } from "./names.ts";

export const metricsPort = 9090;
export const tlsMountPath = "/etc/pingpong/tls";
export const configMountPath = "/etc/pingpong/config";
/** A fixed non-root user: Pod Security "restricted" requires runAsNonRoot. */
export const workloadUser = 65532;

/**
 * Node's options in each workload's pod: the heap is bounded to the container (without it V8 sizes
 * itself for the node's memory). Both keep V8's JIT: undici parses answers with llhttp compiled to
 * WebAssembly, which needs it.
 */
export const workloadNodeOptions = {
  ponger: "--max-old-space-size=96",
  pinger: "--max-old-space-size=96",
} as const;

/**
 * Requests are what each program holds in service (`npm run bench -- workloads`: ponger 76 MiB,
 * pinger 97 MiB after 90 s at 1 ping/s), rounded up; the limit leaves room for load (the ponger held
 * 143 MiB answering 40,000 pings/s) and floods (155 MiB under 3,000 unauthenticated connections).
 */
const defaultResources = {
  ponger: { requests: { cpu: "10m", memory: "80Mi" }, limits: { memory: "256Mi" } },
  pinger: { requests: { cpu: "10m", memory: "104Mi" }, limits: { memory: "256Mi" } },
} as const;

/**
 * NetworkPolicy as the API spells it. (@kubernetes/client-node's model renames `from` to `_from` for
 * its own serializer; this operator sends plain JSON.)
 */
export interface NetworkPolicy extends KubernetesObject {
  spec: {
    podSelector: V1LabelSelector;
    policyTypes: string[];
    ingress: NetworkPolicyIngressRule[];
  };
}

interface NetworkPolicyIngressRule {
  from: ({ podSelector: V1LabelSelector } | { namespaceSelector: V1LabelSelector })[];
  ports: { protocol: string; port: number }[];
}

/** Quantities as strings, the form the API server returns, so applied and stored values compare equal. */
function quantities(values: Record<string, string | number> | undefined): Record<string, string> | undefined {
  return values === undefined
    ? undefined
    : Object.fromEntries(Object.entries(values).map(([k, v]) => [k, String(v)]));
}

export interface BuildContext {
  readonly pair: PingPongPair;
  readonly spec: ResolvedSpec;
  /** Namespace the operator runs in: its pods may read the workloads' metrics ports. */
  readonly operatorNamespace: string;
  /** The fire drill the ponger is to run (drill.ts); none when unset. */
  readonly drill?: DrillFile | undefined;
}

function meta(context: BuildContext, name: string, component: "ponger" | "pinger") {
  return {
    name,
    namespace: context.pair.metadata?.namespace ?? "",
    labels: labels(context.pair.metadata?.name ?? "", component),
    ownerReferences: [ownerReference(context.pair)],
  };
}

const pairName = (context: BuildContext) => context.pair.metadata?.name ?? "";
const mutual = (context: BuildContext) => context.spec.tls.mode === "MutualTLS";

/**
 * The programs' config files are written as JSON (which is YAML too): the programs parse JSON without
 * loading a YAML parser.
 */
const configText = (config: unknown) => `${JSON.stringify(config, null, 2)}\n`;

export function pongerConfigFile(context: BuildContext): string {
  return configText({
    service: {
      address: "0.0.0.0",
      port: context.spec.ponger.port,
      protocol: "https",
      tlsCertificate: `${tlsMountPath}/tls.crt`,
      tlsPrivateKey: `${tlsMountPath}/tls.key`,
      ...(mutual(context) ? { clientCA: `${tlsMountPath}/ca.crt` } : {}),
    },
    metrics: { address: "0.0.0.0", port: metricsPort },
    // Read while the ponger runs (a drill neither restarts it nor counts in the config hash).
    drill: `${configMountPath}/${drillFileName}`,
  });
}

/** The ponger's drill file, in its ConfigMap beside its config. */
export const drillFileName = "drill.json";

export function pingerConfigFile(context: BuildContext): string {
  const namespace = context.pair.metadata?.namespace ?? "";
  return configText({
    ponger: {
      url: `https://${childNames(pairName(context)).ponger}.${namespace}.svc:${context.spec.ponger.port}/ping`,
      acceptCert: `${tlsMountPath}/ca.crt`,
      ...(mutual(context)
        ? { clientCertificate: `${tlsMountPath}/tls.crt`, clientPrivateKey: `${tlsMountPath}/tls.key` }
        : {}),
    },
    interval: context.spec.pinger.interval,
    timeout: context.spec.pinger.timeout,
    metrics: { address: "0.0.0.0", port: metricsPort },
  });
}

function configMap(context: BuildContext, component: "ponger" | "pinger"): V1ConfigMap {
  const names = childNames(pairName(context));
  const file = component === "ponger" ? pongerConfigFile(context) : pingerConfigFile(context);
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: meta(context, component === "ponger" ? names.pongerConfig : names.pingerConfig, component),
    data: {
      [`${component}.yaml`]: file,
      ...(component === "ponger" ? { [drillFileName]: configText(context.drill ?? {}) } : {}),
    },
  };
}

export const pongerConfigMap = (context: BuildContext) => configMap(context, "ponger");
export const pingerConfigMap = (context: BuildContext) => configMap(context, "pinger");

function serviceAccount(context: BuildContext, component: "ponger" | "pinger"): V1ServiceAccount {
  const names = childNames(pairName(context));
  return {
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: meta(context, component === "ponger" ? names.ponger : names.pinger, component),
    // The workloads never call the Kubernetes API.
    automountServiceAccountToken: false,
  };
}

export const pongerServiceAccount = (context: BuildContext) => serviceAccount(context, "ponger");
export const pingerServiceAccount = (context: BuildContext) => serviceAccount(context, "pinger");

function tlsVolume(context: BuildContext, component: "ponger" | "pinger"): V1Volume {
  const names = childNames(pairName(context));
  // In TLS mode the pinger only needs the trust bundle: its key is not mounted where it is not used.
  const onlyBundle = component === "pinger" && !mutual(context);
  return {
    name: "tls",
    secret: {
      secretName: component === "ponger" ? names.pongerSecret : names.pingerSecret,
      defaultMode: 0o440,
      ...(onlyBundle ? { items: [{ key: "ca.crt", path: "ca.crt" }] } : {}),
    },
  };
}

function container(context: BuildContext, component: "ponger" | "pinger"): V1Container {
  const spec = component === "ponger" ? context.spec.ponger : context.spec.pinger;
  const hasResources = Object.keys(spec.resources).length > 0;
  return {
    name: component,
    image: context.spec.image,
    args: [component, "--config", `${configMountPath}/${component}.yaml`],
    env: [
      { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
      // Named in every pong (ponger) and in /status (pinger): where a ping travels.
      { name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
      { name: "NODE_OPTIONS", value: workloadNodeOptions[component] },
    ],
    ports: [
      ...(component === "ponger"
        ? [{ name: "https", containerPort: context.spec.ponger.port, protocol: "TCP" }]
        : []),
      { name: "metrics", containerPort: metricsPort, protocol: "TCP" },
    ],
    // Every second until the program serves (up to a minute), and the kubelet runs the readiness
    // probe the moment this one passes: a ponger is Ready within a second of serving, not at the
    // next readiness tick. A pinger is ready once it has had a pong, which comes a little later:
    // its readiness probe runs every second (the ponger's every 5 s), failing after 6 s (10 s).
    startupProbe: { httpGet: { path: "/healthz", port: "metrics" }, periodSeconds: 1, failureThreshold: 60 },
    livenessProbe: { httpGet: { path: "/healthz", port: "metrics" }, periodSeconds: 10, failureThreshold: 3 },
    readinessProbe:
      component === "pinger"
        ? { httpGet: { path: "/readyz", port: "metrics" }, periodSeconds: 1, failureThreshold: 6 }
        : { httpGet: { path: "/readyz", port: "metrics" }, periodSeconds: 5, failureThreshold: 2 },
    resources: hasResources
      ? {
          ...(spec.resources.requests ? { requests: quantities(spec.resources.requests) } : {}),
          ...(spec.resources.limits ? { limits: quantities(spec.resources.limits) } : {}),
        }
      : defaultResources[component],
    securityContext: {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    },
    volumeMounts: [
      { name: "tls", mountPath: tlsMountPath, readOnly: true },
      { name: "config", mountPath: configMountPath, readOnly: true },
    ],
  };
}

const hostname = "kubernetes.io/hostname";
const zone = "topology.kubernetes.io/zone";

/**
 * Where a component's pods go when the spec says nothing: Linux nodes (the image is Linux's; in a
 * cluster with Windows nodes too), and otherwise preferences only, so a one-node cluster still runs
 * every pair. Pongers prefer nodes, then zones (where nodes are labelled), that run none
 * of the pair's pongers: three pongers land on three nodes when there are three. A pinger prefers a
 * node that runs none of its pongers, so its ping crosses the network between nodes, and then one
 * without another of its pingers. (Preferred pod anti-affinity rather than topology spread
 * constraints: a spread constraint over a zone label that no node has makes the scheduler ignore the
 * whole set of constraints when scoring.)
 */
export function defaultPlacement(pair: string, component: "ponger" | "pinger"): Placement {
  const away = (from: "ponger" | "pinger", topologyKey: string, weight: number) => ({
    weight,
    podAffinityTerm: { labelSelector: { matchLabels: selectorLabels(pair, from) }, topologyKey },
  });
  return {
    nodeSelector: { "kubernetes.io/os": "linux" },
    affinity: {
      podAntiAffinity: {
        preferredDuringSchedulingIgnoredDuringExecution:
          component === "ponger"
            ? [away("ponger", hostname, 100), away("ponger", zone, 50)]
            : [away("ponger", hostname, 100), away("pinger", hostname, 50)],
      },
    },
  };
}

/** The spec's placement fields, each one given replacing the default's. */
export function placement(context: BuildContext, component: "ponger" | "pinger"): Placement {
  return { ...defaultPlacement(pairName(context), component), ...context.spec[component].placement };
}

function deployment(context: BuildContext, component: "ponger" | "pinger"): V1Deployment {
  const names = childNames(pairName(context));
  const name = component === "ponger" ? names.ponger : names.pinger;
  const configFile = component === "ponger" ? pongerConfigFile(context) : pingerConfigFile(context);
  const replicas = component === "ponger" ? context.spec.ponger.replicas : context.spec.pinger.replicas;
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: meta(context, name, component),
    spec: {
      replicas,
      selector: { matchLabels: selectorLabels(pairName(context), component) },
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: {
          labels: labels(pairName(context), component),
          // Programs read their config at start: a changed config rolls the pods.
          annotations: {
            [annotations.configHash]: createHash("sha256").update(configFile).digest("hex").slice(0, 16),
          },
        },
        spec: {
          serviceAccountName: name,
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: workloadUser,
            runAsGroup: workloadUser,
            fsGroup: workloadUser,
            seccompProfile: { type: "RuntimeDefault" },
          },
          ...placement(context, component),
          containers: [container(context, component)],
          volumes: [
            tlsVolume(context, component),
            {
              name: "config",
              configMap: {
                name: component === "ponger" ? names.pongerConfig : names.pingerConfig,
                defaultMode: 0o444,
              },
            },
          ],
        },
      },
    },
  };
}

export const pongerDeployment = (context: BuildContext) => deployment(context, "ponger");
export const pingerDeployment = (context: BuildContext) => deployment(context, "pinger");

export function pongerService(context: BuildContext): V1Service {
  const names = childNames(pairName(context));
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: meta(context, names.ponger, "ponger"),
    spec: {
      type: "ClusterIP",
      selector: selectorLabels(pairName(context), "ponger"),
      ports: [{ name: "https", port: context.spec.ponger.port, targetPort: "https", protocol: "TCP" }],
    },
  };
}

/**
 * Namespaces labelled with this may read the workloads' metrics ports: label the namespace Prometheus
 * runs in (`kubectl label namespace monitoring pingpong.dev/scrape-metrics=true`) for the PodMonitor.
 */
export const scrapeMetricsLabel = "pingpong.dev/scrape-metrics";

/** Who may read a workload's metrics port: the operator (it reads /status) and labelled namespaces. */
function metricsIngress(context: BuildContext): NetworkPolicyIngressRule {
  return {
    from: [
      { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": context.operatorNamespace } } },
      { namespaceSelector: { matchLabels: { [scrapeMetricsLabel]: "true" } } },
    ],
    ports: [{ protocol: "TCP", port: metricsPort }],
  };
}

/** Only the pair's pingers reach the ponger; only the operator's and scrapers' namespaces its metrics. */
export function pongerNetworkPolicy(context: BuildContext): NetworkPolicy {
  const pair = pairName(context);
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: meta(context, childNames(pair).ponger, "ponger"),
    spec: {
      podSelector: { matchLabels: selectorLabels(pair, "ponger") },
      policyTypes: ["Ingress"],
      ingress: [
        {
          from: [{ podSelector: { matchLabels: selectorLabels(pair, "pinger") } }],
          ports: [{ protocol: "TCP", port: context.spec.ponger.port }],
        },
        metricsIngress(context),
      ],
    },
  };
}

export function pingerNetworkPolicy(context: BuildContext): NetworkPolicy {
  const pair = pairName(context);
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: meta(context, childNames(pair).pinger, "pinger"),
    spec: {
      podSelector: { matchLabels: selectorLabels(pair, "pinger") },
      policyTypes: ["Ingress"],
      ingress: [metricsIngress(context)],
    },
  };
}

export function pongerDisruptionBudget(context: BuildContext): V1PodDisruptionBudget {
  const pair = pairName(context);
  return {
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    metadata: meta(context, childNames(pair).ponger, "ponger"),
    spec: { maxUnavailable: 1, selector: { matchLabels: selectorLabels(pair, "ponger") } },
  };
}

/** Every workload child the spec asks for, in apply order (config and identities before pods). */
export function desiredWorkloadChildren(context: BuildContext): KubernetesObject[] {
  return [
    pongerServiceAccount(context),
    pingerServiceAccount(context),
    pongerConfigMap(context),
    pingerConfigMap(context),
    pongerService(context),
    pongerDeployment(context),
    pingerDeployment(context),
    ...(context.spec.networkPolicy.enabled
      ? [pongerNetworkPolicy(context), pingerNetworkPolicy(context)]
      : []),
    ...(context.spec.ponger.replicas > 1 ? [pongerDisruptionBudget(context)] : []),
  ];
}
