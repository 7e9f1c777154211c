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
