import { describe, expect, it } from "vitest";
import { pinnedKubernetesVersion } from "../../controlplane/binaries.ts";
import { kubernetesOpenApi, placementSchemas } from "../../hack/crd/placement-schema.ts";
import { loadCrd } from "./crd.ts";
import {
  apiVersion,
  group,
  kind,
  plural,
  type Placement,
  type PlacementField,
  placementFields,
  type PingPongPairSpec,
  type PingPongPairStatus,
  specDefaults,
  version,
} from "./types.ts";

interface SchemaNode {
  type?: string;
  properties?: Record<string, SchemaNode>;
  additionalProperties?: SchemaNode | boolean;
  items?: SchemaNode;
  default?: unknown;
}

/** Every field required, deeply; the placement fields are PodSpec's own types, required but not deeply. */
type DeepRequired<T> = T extends (infer U)[]
  ? DeepRequired<U>[]
  : T extends object
    ? { [K in keyof T]-?: K extends PlacementField ? NonNullable<T[K]> : DeepRequired<NonNullable<T[K]>> }
    : T;

const isPlacement = (path: string) => placementFields.some((field) => path.endsWith(`.${field}`));

/** Every field path of the schema; maps (additionalProperties), list items and placement fields end a path. */
function schemaPaths(node: SchemaNode, prefix: string): string[] {
  if (!node.properties || isPlacement(prefix)) return [prefix];
  return Object.entries(node.properties).flatMap(([name, child]) => schemaPaths(child, `${prefix}.${name}`));
}

/** Every field path of a sample object, stopping at the same places the schema does. */
function samplePaths(value: unknown, prefix: string, schema: SchemaNode): string[] {
  if (
    !schema.properties ||
    isPlacement(prefix) ||
    typeof value !== "object" ||
    value === null ||
    Array.isArray(value)
  )
    return [prefix];
  const properties = schema.properties;
  return Object.entries(value).flatMap(([name, child]) =>
    samplePaths(child, `${prefix}.${name}`, properties[name] ?? {}),
  );
}

function defaultsOf(node: SchemaNode): unknown {
  if (!node.properties) return node.default;
  const entries = Object.entries(node.properties)
    .map(([name, child]) => [name, defaultsOf(child)] as const)
    .filter(
      ([, value]) =>
        value !== undefined &&
        !(typeof value === "object" && value !== null && Object.keys(value).length === 0),
    );
  return entries.length === 0 ? undefined : Object.fromEntries(entries);
}

// Fully populated: the compiler refuses a field the types lack, or a missing one they have.
const quantities = { cpu: "100m", memory: "64Mi" };
const placement: Required<Placement> = {
  nodeSelector: { pool: "pingers" },
  tolerations: [{ key: "dedicated", operator: "Equal", value: "ping", effect: "NoSchedule" }],
  affinity: {},
  topologySpreadConstraints: [],
  priorityClassName: "high",
};
const fullSpec: DeepRequired<PingPongPairSpec> = {
  image: "pingpong:dev",
  ponger: { replicas: 2, port: 8443, resources: { requests: quantities, limits: quantities }, ...placement },
  pinger: {
    ...placement,
    replicas: 1,
    interval: "1s",
    timeout: "2s",
    successThreshold: 0.95,
    resources: { requests: quantities, limits: quantities },
  },
  tls: {
    mode: "MutualTLS",
    keySize: 2048,
    caDuration: "8760h",
    certDuration: "24h",
    renewBefore: "8h",
    rotate: "a",
    rotateCA: "b",
  },
  networkPolicy: { enabled: true },
  drill: {
    abortRatio: 0.5,
    abortStatus: 503,
    delayRatio: 1,
    delay: "300ms",
    refuseClientCertificates: false,
    until: "2026-12-03T21:00:00Z",
  },
};
const certificate = {
  serial: "01",
  notBefore: "t",
  notAfter: "t",
  renewalTime: "t",
  sha256Fingerprint: "AB",
};
const fullStatus: DeepRequired<PingPongPairStatus> = {
  observedGeneration: 1,
  conditions: [
    {
      type: "Ready",
      status: "True",
      observedGeneration: 1,
      lastTransitionTime: "t",
      reason: "r",
      message: "m",
    },
  ],
  ca: certificate,
  certificates: { ponger: certificate, pinger: certificate, expires: "t" },
  ponger: { replicas: 1, readyReplicas: 1, selector: "a=b", ready: "1/1" },
  pinger: { replicas: 1, readyReplicas: 1, ready: "1/1" },
  drill: {
    state: "Running",
    faults: "abort 50% (503)",
    until: "t",
    message: "m",
    startedAt: "t",
    injectingPongers: 1,
    injectingSince: "t",
  },
  ping: {
    lastPongTime: "t",
    sent: 1,
    succeeded: 1,
    failed: 0,
    successRatio: 1,
    latencyP50Ms: 1,
    latencyP99Ms: 2,
    success: "100%",
    latencyP99: "2ms",
    windowSeconds: 60,
    failuresByReason: { tls: 1 },
    pingers: 2,
    worstPinger: { pod: "p", successRatio: 0.9, latencyP99Ms: 3 },
    pongsByPod: { a: 1 },
    paths: [{ pingerNode: "n1", pongerNode: "n2", pongs: 1 }],
    pathsSummary: "1 of 1 node pairs cross nodes",
    failuresByPingerNode: { n1: 1 },
  },
};

describe("the CRD and the TypeScript types", () => {
  const crd = loadCrd();
  const served = crd.spec.versions.find((v) => v.name === version);
  const schema = served?.schema?.openAPIV3Schema as SchemaNode;
  const specSchema = schema.properties?.spec ?? {};
  const statusSchema = schema.properties?.status ?? {};

  it("names the same group, version, kind and plural", () => {
    expect(crd.spec.group).toBe(group);
    expect(`${crd.spec.group}/${served?.name ?? ""}`).toBe(apiVersion);
    expect(crd.spec.names.kind).toBe(kind);
    expect(crd.spec.names.plural).toBe(plural);
    expect(crd.spec.names.shortNames).toEqual(["ppp"]);
    expect(crd.metadata?.name).toBe(`${plural}.${group}`);
  });

  it("holds PodSpec's own schema for the placement fields, from the pinned Kubernetes version", () => {
    const expected = placementSchemas(kubernetesOpenApi(pinnedKubernetesVersion()));
    for (const component of ["ponger", "pinger"]) {
      const properties = specSchema.properties?.[component]?.properties ?? {};
      for (const field of placementFields)
        expect(
          properties[field],
          `spec.${component}.${field} (run node hack/crd/update-placement.ts)`,
        ).toEqual(expected[field]);
    }
  });

  it("has the same spec fields", () => {
    expect(samplePaths(fullSpec, "spec", specSchema).sort()).toEqual(schemaPaths(specSchema, "spec").sort());
  });

  it("has the same status fields", () => {
    expect(samplePaths(fullStatus, "status", statusSchema).sort()).toEqual(
      schemaPaths(statusSchema, "status").sort(),
    );
  });

  it("has the same defaults", () => {
    expect(defaultsOf(specSchema)).toEqual(specDefaults);
  });

  it("has status and scale subresources pointing at the ponger", () => {
    expect(served?.subresources?.status).toEqual({});
    expect(served?.subresources?.scale).toEqual({
      specReplicasPath: ".spec.ponger.replicas",
      statusReplicasPath: ".status.ponger.replicas",
      labelSelectorPath: ".status.ponger.selector",
    });
  });

  it("shows the design's printer columns", () => {
    const columns = served?.additionalPrinterColumns
      ?.filter((c) => c.priority === undefined)
      .map((c) => c.name);
    expect(columns).toEqual([
      "Ready",
      "Pingers",
      "Pongers",
      "Success",
      "P99",
      "Cert-Expires",
      "Drill",
      "Age",
    ]);
  });
});
