import type { V1Container, V1Deployment } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { resolveSpec } from "../api/spec.ts";
import type { PingPongPair } from "../api/types.ts";
import {
  type BuildContext,
  desiredWorkloadChildren,
  pingerConfigFile,
  pingerDeployment,
  pongerConfigFile,
  pongerConfigMap,
  pongerDeployment,
  pingerNetworkPolicy,
  pongerNetworkPolicy,
  workloadNodeOptions,
  workloadUser,
} from "./children.ts";

function context(spec: PingPongPair["spec"] = {}): BuildContext {
  const pair: PingPongPair = {
    apiVersion: "pingpong.dev/v1alpha1",
    kind: "PingPongPair",
    metadata: { name: "demo", namespace: "ns", uid: "uid-1", generation: 1 },
    spec,
  };
  return { pair, spec: resolveSpec(pair, "pingpong-operator:dev"), operatorNamespace: "pingpong-system" };
}

const container = (deployment: V1Deployment): V1Container => {
  const first = deployment.spec?.template.spec?.containers[0];
  if (!first) throw new Error("no container");
  return first;
};

describe("the workload builders", () => {
  it("are pure: the same pair gives the same objects", () => {
    expect(desiredWorkloadChildren(context())).toEqual(desiredWorkloadChildren(context()));
  });

  it("give every child the pair as controlling owner, in the pair's namespace", () => {
    for (const child of desiredWorkloadChildren(context())) {
      expect(child.metadata?.namespace).toBe("ns");
      expect(child.metadata?.ownerReferences).toEqual([
        expect.objectContaining({ kind: "PingPongPair", name: "demo", uid: "uid-1", controller: true }),
      ]);
    }
  });

  it('run the pods as Pod Security "restricted" requires, with the heap bounded and the pinger without a JIT', () => {
    for (const [component, deployment] of [
      ["ponger", pongerDeployment(context())],
      ["pinger", pingerDeployment(context())],
    ] as const) {
      const pod = deployment.spec?.template.spec;
      expect(pod?.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: workloadUser });
      expect(pod?.automountServiceAccountToken).toBe(false);
      const c = container(deployment);
      expect(c.securityContext).toEqual({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        runAsNonRoot: true,
        capabilities: { drop: ["ALL"] },
        seccompProfile: { type: "RuntimeDefault" },
      });
      expect(c.env).toContainEqual({ name: "NODE_OPTIONS", value: workloadNodeOptions[component] });
      expect(workloadNodeOptions[component]).toContain("--max-old-space-size=96");
      // undici's parser is WebAssembly: a pinger without a JIT could not read an answer.
      expect(workloadNodeOptions[component]).not.toContain("--jitless");
      expect(c.livenessProbe?.httpGet).toMatchObject({ path: "/healthz", port: "metrics" });
      expect(c.readinessProbe?.httpGet).toMatchObject({ path: "/readyz", port: "metrics" });
      // Ready within a second of serving: probed every second until then.
      expect(c.startupProbe).toMatchObject({
        httpGet: { path: "/healthz", port: "metrics" },
        periodSeconds: 1,
      });
    }
  });

  it("mount the pinger's key only in mutual TLS", () => {
    const volume = (c: BuildContext) =>
      pingerDeployment(c).spec?.template.spec?.volumes?.find((v) => v.name === "tls")?.secret;
    expect(volume(context({ tls: { mode: "TLS" } }))?.items).toEqual([{ key: "ca.crt", path: "ca.crt" }]);
    expect(volume(context({ tls: { mode: "MutualTLS" } }))?.items).toBeUndefined();
  });

  it("write config files the programs read: JSON, pointing the pinger at the ponger's Service", () => {
    const mutual = context({ tls: { mode: "MutualTLS" }, ponger: { port: 9443 } });
    expect(JSON.parse(pingerConfigFile(mutual))).toMatchObject({
      ponger: {
        url: "https://demo-ponger.ns.svc:9443/ping",
        acceptCert: "/etc/pingpong/tls/ca.crt",
        clientCertificate: "/etc/pingpong/tls/tls.crt",
        clientPrivateKey: "/etc/pingpong/tls/tls.key",
      },
    });
    expect(JSON.parse(pongerConfigFile(mutual))).toMatchObject({
      service: { port: 9443, clientCA: "/etc/pingpong/tls/ca.crt" },
    });
    const tlsOnly = context({ tls: { mode: "TLS" } });
    expect(pingerConfigFile(tlsOnly)).not.toContain("clientCertificate");
    expect(pongerConfigFile(tlsOnly)).not.toContain("clientCA");
  });

  it("roll the pods when their config changes, and only then", () => {
    const hash = (c: BuildContext) => pongerDeployment(c).spec?.template.metadata?.annotations;
    expect(hash(context())).toEqual(hash(context()));
    expect(hash(context({ ponger: { port: 9443 } }))).not.toEqual(hash(context()));
    expect(hash(context({ ponger: { replicas: 3 } }))).toEqual(hash(context()));
  });

  it("let only the pinger reach the ponger, and only the operator's and labelled namespaces the metrics", () => {
    const { ingress } = pongerNetworkPolicy(context()).spec;
    expect(ingress).toHaveLength(2);
    expect(ingress[0]).toMatchObject({
      from: [{ podSelector: { matchLabels: { "app.kubernetes.io/component": "pinger" } } }],
    });
    expect(ingress[1]).toMatchObject({
      from: [
        { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "pingpong-system" } } },
        { namespaceSelector: { matchLabels: { "pingpong.dev/scrape-metrics": "true" } } },
      ],
      ports: [{ protocol: "TCP", port: 9090 }],
    });
    expect(pingerNetworkPolicy(context()).spec.ingress).toEqual([ingress[1]]);
  });
});

describe("where a pair's pods are placed", () => {
  const podSpec = (deployment: V1Deployment) => deployment.spec?.template.spec;
  const preferred = (deployment: V1Deployment) =>
    podSpec(deployment)?.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution?.map(
      (term) => [
        term.weight,
        term.podAffinityTerm.labelSelector?.matchLabels?.["app.kubernetes.io/component"],
        term.podAffinityTerm.topologyKey,
      ],
    );

  it("by default: Linux nodes; pongers away from each other (nodes, then zones), a pinger away from its pongers, preferred only", () => {
    expect(preferred(pongerDeployment(context()))).toEqual([
      [100, "ponger", "kubernetes.io/hostname"],
      [50, "ponger", "topology.kubernetes.io/zone"],
    ]);
    expect(preferred(pingerDeployment(context()))).toEqual([
      [100, "ponger", "kubernetes.io/hostname"],
      [50, "pinger", "kubernetes.io/hostname"],
    ]);
    for (const deployment of [pongerDeployment(context()), pingerDeployment(context())]) {
      const spec = podSpec(deployment);
      // Only this pair's pods are counted.
      for (const term of spec?.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution ??
        [])
        expect(term.podAffinityTerm.labelSelector?.matchLabels?.["app.kubernetes.io/instance"]).toBe("demo");
      expect(spec?.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution).toBeUndefined();
      expect(spec?.affinity?.nodeAffinity).toBeUndefined();
      expect(spec?.nodeSelector).toEqual({ "kubernetes.io/os": "linux" });
      expect(spec?.tolerations).toBeUndefined();
      expect(spec?.topologySpreadConstraints).toBeUndefined();
    }
  });

  it("passes the spec's placement fields as written, each replacing the default", () => {
    const affinity = {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{ matchExpressions: [{ key: "pool", operator: "In", values: ["ping"] }] }],
        },
      },
    };
    const tolerations = [{ key: "dedicated", operator: "Equal", value: "ping", effect: "NoSchedule" }];
    const spread = [
      { maxSkew: 1, topologyKey: "kubernetes.io/hostname", whenUnsatisfiable: "DoNotSchedule" },
    ];
    const placed = context({
      ponger: { nodeSelector: { pool: "ping" }, tolerations, priorityClassName: "high" },
      pinger: { affinity, topologySpreadConstraints: spread },
    });
    const ponger = podSpec(pongerDeployment(placed));
    expect(ponger?.nodeSelector).toEqual({ pool: "ping" });
    expect(ponger?.tolerations).toEqual(tolerations);
    expect(ponger?.priorityClassName).toBe("high");
    // What the ponger's spec did not give keeps its default.
    expect(ponger?.affinity).toEqual(podSpec(pongerDeployment(context()))?.affinity);
    const pinger = podSpec(pingerDeployment(placed));
    expect(pinger?.affinity).toEqual(affinity);
    expect(pinger?.topologySpreadConstraints).toEqual(spread);
    expect(pinger?.nodeSelector).toEqual({ "kubernetes.io/os": "linux" });
  });
});

describe("the ponger's fire drill", () => {
  it("rides in its ConfigMap beside its config, and changing it rolls no pod", () => {
    const drill = { abortRatio: 0.5, abortStatus: 503, until: "2026-12-03T12:05:00.000Z" };
    const calm = context();
    const drilling = { ...context(), drill };
    expect((JSON.parse(pongerConfigFile(calm)) as { drill?: string }).drill).toBe(
      "/etc/pingpong/config/drill.json",
    );
    expect(JSON.parse(pongerConfigMap(calm).data?.["drill.json"] ?? "")).toEqual({});
    expect(JSON.parse(pongerConfigMap(drilling).data?.["drill.json"] ?? "")).toEqual(drill);
    expect(pongerDeployment(drilling).spec?.template.metadata?.annotations).toEqual(
      pongerDeployment(calm).spec?.template.metadata?.annotations,
    );
  });
});
