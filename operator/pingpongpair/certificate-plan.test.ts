import type { V1Secret } from "@kubernetes/client-node";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { parseTrustBundle } from "../../lib/pki/bundle.ts";
import { inspectCertificate, isSignedBy } from "../../lib/pki/inspect.ts";
import type { IssuedCertificate } from "../../lib/pki/mint.ts";
import { resolveSpec } from "../api/spec.ts";
import type { PingPongPair } from "../api/types.ts";
import { inProcessMinter } from "../pki/minter.ts";
import {
  type CertificatePlan,
  type LeafRole,
  leafRoles,
  type Mint,
  type PlanInput,
  planCertificates,
  type PublishPlan,
  type StoredSecrets,
} from "./certificate-plan.ts";
import { annotations, pongerDnsNames } from "./names.ts";

// Real certificates, minted once: the planner parses what the Secrets hold.
const now = new Date("2026-12-01T12:00:00.000Z");
const step = 60_000;
const pair: PingPongPair = {
  apiVersion: "pingpong.dev/v1alpha1",
  kind: "PingPongPair",
  metadata: { name: "demo", namespace: "ns", uid: "uid-1" },
  spec: { tls: { keySize: 2048 } },
};
const spec = resolveSpec(pair, "pingpong-operator:dev");
type Material = { ca: IssuedCertificate } & Record<LeafRole, IssuedCertificate>;
let one: Material;
let two: Material;

async function mintSet(): Promise<Material> {
  const ca = await inProcessMinter.createCertificateAuthority(
    { commonName: "demo-ca", keySize: 2048, durationMs: spec.tls.caDurationMs },
    now,
  );
  const leaf = (usage: "server" | "client", commonName: string, dnsNames: string[]) =>
    inProcessMinter.issueLeafCertificate(
      ca,
      { usage, commonName, dnsNames, keySize: 2048, durationMs: spec.tls.certDurationMs },
      now,
    );
  const [ponger, pinger] = await Promise.all([
    leaf("server", "demo-ponger", pongerDnsNames("demo", "ns")),
    leaf("client", "demo-pinger", []),
  ]);
  return { ca, ponger, pinger };
}

beforeAll(async () => {
  [one, two] = await Promise.all([mintSet(), mintSet()]);
}, 60_000);

const b64 = (text: string) => Buffer.from(text).toString("base64");

function caSecret(ca: IssuedCertificate, extra: Record<string, string> = {}, previous?: string): V1Secret {
  return {
    metadata: { annotations: { [annotations.rotateCA]: "", ...extra } },
    data: {
      "tls.crt": b64(ca.certificatePem),
      "tls.key": b64(ca.privateKeyPem),
      ...(previous ? { "previous.crt": b64(previous) } : {}),
    },
  };
}

function leafSecret(leaf: IssuedCertificate, bundle: string, token = ""): V1Secret {
  return {
    metadata: { annotations: { [annotations.rotate]: token } },
    data: { "tls.crt": b64(leaf.certificatePem), "tls.key": b64(leaf.privateKeyPem), "ca.crt": b64(bundle) },
  };
}

/** The Secrets as a published plan of material `m` leaves them. */
function settled(m: Material): StoredSecrets {
  return {
    ca: caSecret(m.ca),
    ponger: leafSecret(m.ponger, m.ca.certificatePem),
    pinger: leafSecret(m.pinger, m.ca.certificatePem),
  };
}

function plan(overrides: Partial<PlanInput> = {}): CertificatePlan {
  return planCertificates({
    name: "demo",
    namespace: "ns",
    spec,
    stored: {},
    now,
    rotationStepMs: step,
    pods: { observations: [], running: 0 },
    ...overrides,
  });
}

function mints(result: CertificatePlan): Mint[] {
  if (result.action !== "mint") throw new Error(`expected a plan to mint, got ${result.action}`);
  return [...result.mint];
}

function published(result: CertificatePlan): PublishPlan {
  if (result.action !== "publish")
    throw new Error(
      `expected a plan to publish, got ${mints(result)
        .map((m) => m.role)
        .join()}`,
    );
  return result.publish;
}

const fingerprint = (pem: string) => inspectCertificate(pem).sha256Fingerprint;
/** The CAs of a bundle, by fingerprint (PEM line endings differ between minting and parsing). */
const cas = (bundle: string) => parseTrustBundle(bundle).map((e) => e.info.sha256Fingerprint);
const casOf = (...pems: string[]) => pems.map(fingerprint);
const summary = (m: Mint) => [m.role, m.reason, m.role === "ca" ? undefined : m.issuer.fingerprint];

describe("planCertificates", () => {
  it("mints the CA first when nothing is stored, and only the CA", () => {
    expect(mints(plan()).map(summary)).toEqual([["ca", "Missing", undefined]]);
  });

  it("then mints both leaves under the CA just minted", () => {
    const result = mints(plan({ minted: { ca: one.ca } }));
    const ca = fingerprint(one.ca.certificatePem);
    expect(result.map(summary)).toEqual([
      ["ponger", "Missing", ca],
      ["pinger", "Missing", ca],
    ]);
    expect(result.find((m) => m.role === "ponger")?.request).toMatchObject({
      usage: "server",
      dnsNames: pongerDnsNames("demo", "ns"),
    });
  });

  it("publishes what it minted, with the reason each was minted", () => {
    const result = published(plan({ minted: one }));
    expect(Object.entries(result.reasons).map(([role, why]) => [role, why.reason])).toEqual([
      ["ca", "Missing"],
      ["ponger", "Missing"],
      ["pinger", "Missing"],
    ]);
    expect(cas(result.bundle)).toEqual(casOf(one.ca.certificatePem));
    expect(result.rotation.phase).toBeUndefined();
  });

  it("keeps valid Secrets as they are, and looks again at the earliest renewal", () => {
    const result = published(plan({ stored: settled(one) }));
    expect(result.reasons).toEqual({});
    expect(result.ca.material).toEqual(one.ca);
    expect(result.leaves.ponger.material.certificatePem).toBe(one.ponger.certificatePem);
    expect(result.nextCheck).toEqual(result.leaves.ponger.renewal);
  });

  it("mints both leaves under the stored CA when spec.tls.rotate changes", () => {
    const rotated = resolveSpec({ ...pair, spec: { tls: { keySize: 2048, rotate: "now" } } }, "x");
    const ca = fingerprint(one.ca.certificatePem);
    expect(mints(plan({ spec: rotated, stored: settled(one) })).map(summary)).toEqual([
      ["ponger", "RotateRequested", ca],
      ["pinger", "RotateRequested", ca],
    ]);
  });

  it("starts a CA rotation on rotateCA: a new CA trusted beside the old, leaves kept", () => {
    const rotated = resolveSpec({ ...pair, spec: { tls: { keySize: 2048, rotateCA: "1" } } }, "x");
    expect(mints(plan({ spec: rotated, stored: settled(one) })).map(summary)).toEqual([
      ["ca", "RotateRequested", undefined],
    ]);
    const result = published(plan({ spec: rotated, stored: settled(one), minted: { ca: two.ca } }));
    expect(result.rotation.phase).toBe("TrustBoth");
    expect(cas(result.bundle)).toEqual(casOf(two.ca.certificatePem, one.ca.certificatePem));
    expect(result.leaves.pinger.material.certificatePem).toBe(one.pinger.certificatePem);
    expect(Object.keys(result.reasons)).toEqual(["ca"]);
  });

  it("re-issues the leaves under the new CA once the rotation reaches IssueLeaves", () => {
    const stored = {
      ca: caSecret(
        two.ca,
        {
          [annotations.caRotationPhase]: "IssueLeaves",
          [annotations.caRotationSince]: new Date(now.getTime() - 10 * step).toISOString(),
        },
        one.ca.certificatePem,
      ),
      ponger: leafSecret(one.ponger, two.ca.certificatePem + one.ca.certificatePem),
      pinger: leafSecret(one.pinger, two.ca.certificatePem + one.ca.certificatePem),
    };
    const ca = fingerprint(two.ca.certificatePem);
    expect(mints(plan({ stored })).map(summary)).toEqual([
      ["ponger", "NotSignedByCA", ca],
      ["pinger", "NotSignedByCA", ca],
    ]);
    const result = published(plan({ stored, minted: { ponger: two.ponger, pinger: two.pinger } }));
    // The old CA stays in the bundle until the pods report the new leaves loaded.
    expect(cas(result.bundle)).toEqual(casOf(two.ca.certificatePem, one.ca.certificatePem));
  });

  it("repairs a corrupted CA Secret, carrying over the CA the leaves' bundles trust", () => {
    const stored = {
      ...settled(one),
      ca: { data: { "tls.crt": b64("garbage"), "tls.key": b64("garbage") } },
    };
    expect(mints(plan({ stored })).map(summary)).toEqual([["ca", "Unparsable", undefined]]);
    const result = published(plan({ stored, minted: { ca: two.ca } }));
    expect(result.rotation.phase).toBe("TrustBoth");
    expect(cas(result.bundle)).toEqual(casOf(two.ca.certificatePem, one.ca.certificatePem));
  });

  it("names the running pods that have not loaded the leaves", () => {
    const result = published(
      plan({
        stored: settled(one),
        pods: {
          running: 2,
          observations: [
            {
              pod: "demo-ponger-a",
              component: "ponger",
              trust: [],
              leaf: fingerprint(one.ponger.certificatePem),
            },
            { pod: "demo-pinger-a", component: "pinger", trust: [], leaf: "old" },
          ],
        },
      }),
    );
    expect(result.leavesLoading).toEqual(["demo-pinger-a (has not loaded its new certificate)"]);
  });
});

describe("planCertificates on damaged Secrets", () => {
  // Each Secret field is a real value from one of two certificate sets, a wrong one, garbage, or gone.
  const field = (pick: (m: Material) => string) =>
    fc.constantFrom<(a: Material, b: Material) => string | undefined>(
      (a) => pick(a),
      (_a, b) => pick(b),
      () => "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
      () => "",
      () => undefined,
    );
  const secret = (cert: (m: Material) => string, key: (m: Material) => string) =>
    fc.record({
      crt: field(cert),
      key: field(key),
      bundle: field((m) => m.ca.certificatePem),
      annotation: fc.constantFrom("", "1", "IssueLeaves", "TrustBoth", "not a date"),
      present: fc.boolean(),
    });
  const damaged = fc.record({
    ca: secret(
      (m) => m.ca.certificatePem,
      (m) => m.ca.privateKeyPem,
    ),
    ponger: secret(
      (m) => m.ponger.certificatePem,
      (m) => m.ponger.privateKeyPem,
    ),
    pinger: secret(
      (m) => m.pinger.certificatePem,
      (m) => m.pinger.privateKeyPem,
    ),
  });
  type Damage = typeof damaged extends fc.Arbitrary<infer T> ? T : never;

  function build(d: Damage[keyof Damage], bundleKey: string): V1Secret | undefined {
    if (!d.present) return undefined;
    const data: Record<string, string> = {};
    const put = (k: string, v: string | undefined) => v !== undefined && (data[k] = b64(v));
    put("tls.crt", d.crt(one, two));
    put("tls.key", d.key(one, two));
    put(bundleKey, d.bundle(one, two));
    const annotated = {
      [annotations.rotate]: d.annotation,
      [annotations.rotateCA]: d.annotation,
      [annotations.caRotationPhase]: d.annotation,
      [annotations.caRotationSince]: d.annotation,
    };
    return { metadata: { annotations: annotated }, data };
  }

  /**
   * Plans and "mints" until the plan publishes: a new CA is whichever set's CA the CA Secret does not
   * hold; a leaf comes from the set of the CA the plan names as its issuer.
   */
  function carryOut(stored: StoredSecrets): { published: PublishPlan; leafMints: Mint[] } {
    const minted: PlanInput["minted"] & object = {};
    const leafMints: Mint[] = [];
    const storedCa = stored.ca?.data?.["tls.crt"];
    for (let round = 0; round < 3; round++) {
      const result = plan({ stored, minted });
      if (result.action === "publish") return { published: result.publish, leafMints };
      for (const mint of result.mint) {
        if (mint.role === "ca") {
          minted.ca = storedCa === b64(two.ca.certificatePem) ? one.ca : two.ca;
          continue;
        }
        leafMints.push(mint);
        const set = mint.issuer.fingerprint === fingerprint(one.ca.certificatePem) ? one : two;
        minted[mint.role] = set[mint.role];
      }
    }
    throw new Error("the plan did not publish after three rounds");
  }

  it("never throws, and never plans or publishes a leaf its peer's bundle does not verify", () => {
    fc.assert(
      fc.property(damaged, (d) => {
        const stored = {
          ca: build(d.ca, "previous.crt"),
          ponger: build(d.ponger, "ca.crt"),
          pinger: build(d.pinger, "ca.crt"),
        };
        const { published: result, leafMints } = carryOut(stored);
        const bundle = parseTrustBundle(result.bundle).map((e) => e.pem);
        expect(cas(result.bundle)[0]).toBe(fingerprint(result.ca.material.certificatePem));
        for (const mint of leafMints) {
          if (mint.role === "ca") continue;
          expect(cas(result.bundle)).toContain(mint.issuer.fingerprint);
        }
        for (const role of leafRoles) {
          const leaf = result.leaves[role].material.certificatePem;
          expect(bundle.some((ca) => isSignedBy(leaf, ca))).toBe(true);
        }
      }),
      { numRuns: 200 },
    );
  });
});
