/**
 * Bad input and damage: the API server refuses what the schema can judge, the operator reports what
 * only it can judge without touching working children, and whatever is deleted or corrupted is
 * repaired.
 */
import type { KubernetesObject, V1Deployment, V1Secret } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { metricValue } from "../workloads/testing/tls-client.ts";
import { eventually } from "../controlplane/testing.ts";
import type { PingPongPairSpec } from "./api/types.ts";
import { secretText } from "./pingpongpair/certificates.ts";
import { parseTrustBundle } from "../lib/pki/bundle.ts";
import { inspectCertificate, isSignedBy } from "../lib/pki/inspect.ts";
import { KubeApiError } from "./runtime/kube-client.ts";
import { resources } from "./runtime/resources.ts";
import { OperatorEnvironment } from "./testing/environment.ts";

let env: OperatorEnvironment;
let namespace: string;
let operatorMetrics: () => Promise<string>;

beforeAll(async () => {
  env = await OperatorEnvironment.start();
  const operator = await env.startOperator();
  operatorMetrics = async () => (await fetch(`${operator.probes.url}/metrics`)).text();
  namespace = await env.namespace("damage");
});
afterAll(async () => {
  await OperatorEnvironment.stopIfStarted(env);
});

async function secret(name: string): Promise<V1Secret | undefined> {
  return env.admin.get<V1Secret>(resources.secret, namespace, name);
}

const certificateOf = async (name: string) =>
  inspectCertificate(secretText(await secret(name), "tls.crt") ?? "");

async function refusal(name: string, spec: PingPongPairSpec): Promise<string> {
  const error = await env.createPair(namespace, name, spec).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, `${name} should be refused`).toBeInstanceOf(KubeApiError);
  expect((error as KubeApiError).status).toBe(422);
  return (error as Error).message;
}

describe("specs the API server refuses", () => {
  it.each<[string, string, PingPongPairSpec, RegExp]>([
    [
      "negative replicas",
      "neg",
      { ponger: { replicas: -1 } },
      /spec\.ponger\.replicas: Invalid value: -1: .*greater than or equal to 0/,
    ],
    [
      "too many replicas",
      "many",
      { pinger: { replicas: 1000 } },
      /spec\.pinger\.replicas: Invalid value: 1000: .*less than or equal to 100/,
    ],
    [
      "an unknown TLS mode",
      "mode",
      { tls: { mode: "Mutual" as "TLS" } },
      /spec\.tls\.mode: Unsupported value: "Mutual": supported values: "MutualTLS", "TLS"/,
    ],
    [
      "an unsupported key size",
      "key",
      { tls: { keySize: 1024 as 2048 } },
      /spec\.tls\.keySize: Unsupported value: 1024/,
    ],
    [
      "an interval that is not a duration",
      "interval",
      { pinger: { interval: "fast" } },
      /spec\.pinger\.interval: Invalid value: "fast": spec\.pinger\.interval in body should match/,
    ],
    [
      "an interval too short",
      "short",
      { pinger: { interval: "10ms" } },
      /spec\.pinger\.interval: Invalid value: "10ms": spec\.pinger\.interval must be between 100ms and 1h/,
    ],
    [
      "renewBefore longer than certDuration",
      "renew",
      { tls: { certDuration: "24h", renewBefore: "30h" } },
      /spec\.tls\.renewBefore: Invalid value: spec\.tls\.renewBefore must be shorter than spec\.tls\.certDuration/,
    ],
    [
      "a CA that outlives too few leaves",
      "cadur",
      { tls: { caDuration: "48h", certDuration: "24h" } },
      /spec\.tls\.caDuration: Invalid value: spec\.tls\.caDuration must be at least 3 times spec\.tls\.certDuration/,
    ],
    [
      "the metrics port as ponger port",
      "port",
      { ponger: { port: 9090 } },
      /spec\.ponger\.port: Invalid value: 9090: spec\.ponger\.port must not be 9090, the metrics port/,
    ],
    [
      "a privileged port",
      "low",
      { ponger: { port: 80 } },
      /spec\.ponger\.port: Invalid value: 80: .*greater than or equal to 1024/,
    ],
    [
      "a bad quantity",
      "qty",
      { ponger: { resources: { limits: { cpu: "lots" } } } },
      /spec\.ponger\.resources\.limits\.cpu: Invalid value: "lots"/,
    ],
  ])("refuses %s, naming the field", async (_, name, spec, message) => {
    expect(await refusal(name, spec)).toMatch(message);
  });

  it("refuses a name that cannot name the pair's Service", async () => {
    const tooLong = "a".repeat(51);
    expect(await refusal(tooLong, {})).toMatch(/metadata\.name must be at most 50 characters/);
    expect(await refusal("9lives", {})).toMatch(/starting with a letter/);
  });

  it("fills in the documented defaults", async () => {
    const created = await env.createPair(namespace, "defaults");
    expect(created.spec).toEqual({
      ponger: { replicas: 1, port: 8443 },
      pinger: { replicas: 1, interval: "1s", timeout: "2s", successThreshold: 0.95 },
      tls: { mode: "MutualTLS", keySize: 2048, caDuration: "8760h", certDuration: "24h" },
      networkPolicy: { enabled: true },
    });
  });
});

describe("a spec only the operator can judge", () => {
  it("gets Ready=False InvalidSpec and a Warning event, and leaves working children alone", async () => {
    await env.createPair(namespace, "judged");
    await env.condition(namespace, "judged", "CertificatesReady", "True");
    const children = async () =>
      Promise.all(
        [
          env.admin.get(resources.deployment, namespace, "judged-ponger"),
          env.admin.get(resources.secret, namespace, "judged-ponger-tls"),
          env.admin.get(resources.configMap, namespace, "judged-ponger-config"),
        ].map(async (p) => (await p)?.metadata?.resourceVersion),
      );
    const before = await children();

    await env.admin.mergePatch(resources.pingPongPair, namespace, "judged", {
      spec: { ponger: { resources: { requests: { cpu: "2" }, limits: { cpu: "1" } } } },
    });
    const pair = await env.condition(namespace, "judged", "Ready", "False", "InvalidSpec");
    const ready = pair.status?.conditions?.find((c) => c.type === "Ready");
    expect(ready?.message).toBe(
      "spec.ponger.resources.requests.cpu (2) must not exceed spec.ponger.resources.limits.cpu (1); fix the spec and apply it again",
    );
    expect(pair.status?.conditions?.find((c) => c.type === "CertificatesReady")?.status).toBe("True");
    // Events are recorded after the status write, asynchronously.
    await eventually("a Warning event InvalidSpec on the pair", async () => {
      const events = await env.admin.list<
        KubernetesObject & { reason?: string; type?: string; involvedObject?: { name?: string } }
      >(resources.event, namespace);
      return events.items.some(
        (e) => e.involvedObject?.name === "judged" && e.type === "Warning" && e.reason === "InvalidSpec",
      )
        ? true
        : undefined;
    });
    expect(await children()).toEqual(before);
    // Counted as what it is, not as a successful reconcile.
    expect(
      metricValue(
        await operatorMetrics(),
        'pingpong_operator_reconcile_total{controller="pingpongpair",result="invalid_spec"}',
      ),
    ).toBeGreaterThanOrEqual(1);

    await env.admin.mergePatch(resources.pingPongPair, namespace, "judged", {
      spec: { ponger: { resources: { requests: { cpu: "500m" }, limits: { cpu: "1" } } } },
    });
    await env.condition(namespace, "judged", "Ready", "False", "WorkloadsUnavailable");
    const deployment = await env.admin.get<V1Deployment>(resources.deployment, namespace, "judged-ponger");
    expect(deployment?.spec?.template.spec?.containers[0]?.resources).toEqual({
      requests: { cpu: "500m" },
      limits: { cpu: "1" },
    });
  });

  it("will not take over an object of the same name that it does not manage", async () => {
    await env.admin.create({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "squat-ponger-config", namespace },
      data: { mine: "yes" },
    } as KubernetesObject);
    await env.createPair(namespace, "squat");
    const pair = await env.condition(namespace, "squat", "Ready", "False", "ChildConflict");
    expect(pair.status?.conditions?.find((c) => c.type === "Ready")?.message).toMatch(
      /ConfigMap .*\/squat-ponger-config already exists and is not managed by this PingPongPair; delete or rename it/,
    );
    const untouched = await env.admin.get<KubernetesObject & { data?: Record<string, string> }>(
      resources.configMap,
      namespace,
      "squat-ponger-config",
    );
    expect(untouched?.data).toEqual({ mine: "yes" });
  });
});

describe("an API error while reconciling", () => {
  it("is reported in status and as a Warning event, and the pair recovers when it goes away", async () => {
    const guarded = await env.namespace("guarded");
    const policy = `no-services-${guarded}`;
    await env.admin.create({
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingAdmissionPolicy",
      metadata: { name: policy },
      spec: {
        failurePolicy: "Fail",
        matchConstraints: {
          resourceRules: [
            { apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["services"] },
          ],
        },
        validations: [{ expression: "false", message: "Services are not allowed in this namespace" }],
      },
    } as KubernetesObject);
    await env.admin.create({
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingAdmissionPolicyBinding",
      metadata: { name: policy },
      spec: {
        policyName: policy,
        validationActions: ["Deny"],
        matchResources: { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": guarded } } },
      },
    } as KubernetesObject);
    // Policies take effect a moment after they are created.
    // Policies take effect a moment after they are created; probe with a new name each time, and
    // count only the policy's own refusal.
    let probe = 0;
    await eventually("the policy to refuse Services", async () => {
      const refusal = await env.admin
        .create({
          apiVersion: "v1",
          kind: "Service",
          metadata: { name: `probe-${probe++}`, namespace: guarded },
          spec: { ports: [{ port: 1 }] },
        } as KubernetesObject)
        .then(
          () => "",
          (e: unknown) => (e instanceof Error ? e.message : ""),
        );
      return refusal.includes("Services are not allowed in this namespace") ? true : undefined;
    });

    await env.createPair(guarded, "blocked");
    const pair = await env.condition(guarded, "blocked", "Ready", "False", "ReconcileError");
    expect(pair.status?.conditions?.find((c) => c.type === "Ready")?.message).toMatch(
      /services\/blocked-ponger: .*Services are not allowed in this namespace/,
    );
    await eventually("a Warning event ReconcileError", async () => {
      const events = await env.admin.list<KubernetesObject & { reason?: string; type?: string }>(
        resources.event,
        guarded,
      );
      return events.items.some((e) => e.type === "Warning" && e.reason === "ReconcileError")
        ? true
        : undefined;
    });

    await env.admin.delete(resources.validatingAdmissionPolicyBinding, undefined, policy);
    await env.condition(guarded, "blocked", "Ready", "False", "WorkloadsUnavailable", 60_000);
    expect(await env.admin.get(resources.service, guarded, "blocked-ponger")).toBeDefined();
  });
});

describe("damage is repaired", () => {
  beforeAll(async () => {
    await env.createPair(namespace, "hurt");
    await env.condition(namespace, "hurt", "CertificatesReady", "True");
  });

  it("recreates a deleted leaf Secret and Deployment", async () => {
    const uid = (await secret("hurt-ponger-tls"))?.metadata?.uid;
    await env.admin.delete(resources.secret, namespace, "hurt-ponger-tls");
    await env.admin.delete(resources.deployment, namespace, "hurt-pinger");
    await eventually("the Secret and the Deployment back", async () => {
      const [s, d] = [
        await secret("hurt-ponger-tls"),
        await env.admin.get(resources.deployment, namespace, "hurt-pinger"),
      ];
      return s && s.metadata?.uid !== uid && d ? true : undefined;
    });
    const ca = secretText(await secret("hurt-ca"), "tls.crt") ?? "";
    expect(isSignedBy(secretText(await secret("hurt-ponger-tls"), "tls.crt") ?? "", ca)).toBe(true);
  });

  it("re-issues a leaf whose Secret holds garbage", async () => {
    await env.admin.mergePatch(resources.secret, namespace, "hurt-pinger-tls", {
      data: { "tls.crt": Buffer.from("garbage").toString("base64") },
    });
    const repaired = await eventually("a valid pinger certificate again", async () => {
      try {
        return await certificateOf("hurt-pinger-tls");
      } catch {
        return undefined;
      }
    });
    expect(repaired.subjectCommonName).toBe("hurt-pinger");
  });

  it("mints a new CA when the CA Secret is deleted, re-issues the leaves under it, and drops the old CA", async () => {
    const oldCa = await certificateOf("hurt-ca");
    await env.admin.delete(resources.secret, namespace, "hurt-ca");
    const newCa = await eventually("a new CA", async () => {
      const ca = await certificateOf("hurt-ca").catch(() => undefined);
      return ca && ca.serial !== oldCa.serial ? ca : undefined;
    });
    await eventually("leaves under the new CA and a bundle of only the new CA", async () => {
      const caPem = secretText(await secret("hurt-ca"), "tls.crt") ?? "";
      for (const leaf of ["hurt-ponger-tls", "hurt-pinger-tls"]) {
        const stored = await secret(leaf);
        if (!isSignedBy(secretText(stored, "tls.crt") ?? "", caPem)) return undefined;
        const bundle = parseTrustBundle(secretText(stored, "ca.crt") ?? "");
        if (bundle.length !== 1 || bundle[0]?.info.serial !== newCa.serial) return undefined;
      }
      return true;
    });
    const pair = await env.condition(namespace, "hurt", "CertificatesReady", "True", "Issued");
    expect(pair.status?.ca?.serial).toBe(newCa.serial);
    const events = await env.admin.list<
      KubernetesObject & { reason?: string; message?: string; involvedObject?: { name?: string } }
    >(resources.event, namespace);
    expect(
      events.items.some(
        (e) =>
          e.involvedObject?.name === "hurt" &&
          e.reason === "IssuedCA" &&
          /CA certificate is missing/.test(e.message ?? ""),
      ),
    ).toBe(true);
  });
});
