/**
 * A pair's certificates as a pure plan. In: the Secrets as observed, the spec, what the pods report
 * having loaded, the clock, and what has been minted in this reconcile so far. Out: either what must
 * be minted first (a CA, or leaves under a named CA, each with its reason), or the outcome to publish
 * (the material of the three Secrets, the trust bundle, the CA rotation step, when to look again).
 *
 * The step that carries a plan out (certificates.ts) mints what the plan asks for and plans again
 * with it, until the plan publishes. A CA is always minted before the leaves it signs, so a leaf is
 * never planned under a CA its peer's bundle does not hold. Nothing here throws, whatever the
 * Secrets hold: material that does not parse is a reason to mint.
 */
import type { V1Secret } from "@kubernetes/client-node";
import type { ResolvedSpec } from "../api/spec.ts";
import { parseTrustBundle } from "../../lib/pki/bundle.ts";
import { type CertificateInfo, inspectCertificate, isSignedBy } from "../../lib/pki/inspect.ts";
import type { CertificateAuthorityRequest, IssuedCertificate, LeafRequest } from "../../lib/pki/mint.ts";
import {
  type CertificateAuthoritySpec,
  decideCertificateAuthority,
  decideLeaf,
  type Keep,
  type LeafSpec,
  type ReissueReason,
  type StoredCertificate,
} from "../pki/policy.ts";
import {
  type CaRotationDecision,
  decideCaRotation,
  type PodObservation,
  podsWithoutLeaves,
} from "./ca-rotation.ts";
import { annotations, childNames, pongerDnsNames } from "./names.ts";

export type LeafRole = "ponger" | "pinger";
export type CertificateRole = "ca" | LeafRole;
export const leafRoles: readonly LeafRole[] = ["ponger", "pinger"];

export interface StoredSecrets {
  readonly ca?: V1Secret | undefined;
  readonly ponger?: V1Secret | undefined;
  readonly pinger?: V1Secret | undefined;
}

/** A CA rotation waits this many steps for lagging pods before it says they lag. */
export const rotationMaxWaitSteps = 5;

export interface PlanInput {
  /** The pair's name and namespace: the certificates' names follow them. */
  readonly name: string;
  readonly namespace: string;
  readonly spec: ResolvedSpec;
  readonly stored: StoredSecrets;
  readonly now: Date;
  /** The least time a CA rotation step lasts. */
  readonly rotationStepMs: number;
  /** What the pair's running pods report having loaded, and how many run. */
  readonly pods: { readonly observations: readonly PodObservation[]; readonly running: number };
  /** Minted in this reconcile by earlier steps of the plan. */
  readonly minted?: Partial<Record<CertificateRole, IssuedCertificate>>;
}

/** Why a certificate is minted, in the policy's words. */
export interface MintReason {
  readonly reason: ReissueReason;
  readonly message: string;
}

export type Mint =
  | (MintReason & { readonly role: "ca"; readonly request: CertificateAuthorityRequest })
  | (MintReason & {
      readonly role: LeafRole;
      readonly request: LeafRequest;
      /** The CA that signs it: always the current one, whose certificate heads every bundle. */
      readonly issuer: { readonly fingerprint: string; readonly material: IssuedCertificate };
    });

/** A certificate to publish: its material, what it is, and when to renew it. */
export interface PlannedCertificate {
  readonly material: IssuedCertificate;
  readonly info: CertificateInfo;
  readonly renewal: Date;
}

export interface PublishPlan {
  readonly ca: PlannedCertificate;
  readonly leaves: Readonly<Record<LeafRole, PlannedCertificate>>;
  /** Earlier CAs (PEM) kept in every ca.crt during a rotation; the current CA heads the bundle. */
  readonly previous: readonly string[];
  readonly bundle: string;
  readonly rotation: CaRotationDecision;
  /** Running pods that have not loaded the leaf certificate their role has now. */
  readonly leavesLoading: readonly string[];
  /** When to look again: the earliest renewal or the end of the current rotation phase. */
  readonly nextCheck: Date;
  /** Why each certificate minted in this reconcile was minted. */
  readonly reasons: Partial<Record<CertificateRole, MintReason>>;
}

export type CertificatePlan =
  | { readonly action: "mint"; readonly mint: readonly Mint[] }
  | { readonly action: "publish"; readonly publish: PublishPlan };

export function secretText(secret: V1Secret | undefined, key: string): string | undefined {
  const value = secret?.data?.[key];
  return value === undefined ? undefined : Buffer.from(value, "base64").toString("utf8");
}

export function planCertificates(input: PlanInput): CertificatePlan {
  const ca = planCa(input);
  if ("mint" in ca) return { action: "mint", mint: [ca.mint] };
  const rotation = decideCaRotation({
    now: input.now,
    minDwellMs: input.rotationStepMs,
    maxWaitMs: rotationMaxWaitSteps * input.rotationStepMs,
    stored: {
      phase: input.stored.ca?.metadata?.annotations?.[annotations.caRotationPhase],
      since: input.stored.ca?.metadata?.annotations?.[annotations.caRotationSince],
      previous: otherThan(ca.planned.info, validCas(secretText(input.stored.ca, "previous.crt"), input.now)),
    },
    replaced: ca.carryOver && { carryOver: otherThan(ca.planned.info, ca.carryOver) },
    caFingerprint: ca.planned.info.sha256Fingerprint,
    leaves: {
      ponger: leafInSecret(input.stored.ponger, ca.planned.material.certificatePem),
      pinger: leafInSecret(input.stored.pinger, ca.planned.material.certificatePem),
    },
    pods: input.pods.observations,
    running: input.pods.running,
    mutualTls: input.spec.tls.mode === "MutualTLS",
  });

  const mints: Mint[] = [];
  const leaves: Partial<Record<LeafRole, PlannedCertificate>> = {};
  const reasons: Partial<Record<CertificateRole, MintReason>> = ca.reason ? { ca: ca.reason } : {};
  for (const role of leafRoles) {
    const leaf = planLeaf(input, role, ca.planned, rotation);
    if ("mint" in leaf) mints.push(leaf.mint);
    else leaves[role] = leaf.planned;
    if (leaf.reason) reasons[role] = leaf.reason;
  }
  if (mints.length > 0 || !leaves.ponger || !leaves.pinger) return { action: "mint", mint: mints };
  return {
    action: "publish",
    publish: publishPlan(
      input,
      ca.planned,
      { ponger: leaves.ponger, pinger: leaves.pinger },
      rotation,
      reasons,
    ),
  };
}

function caSpecOf(input: PlanInput): CertificateAuthoritySpec {
  return {
    commonName: `${input.name}-ca`,
    keySize: input.spec.tls.keySize,
    durationMs: input.spec.tls.caDurationMs,
    renewBeforeMs: Math.floor(input.spec.tls.caDurationMs / 3),
    rotateToken: input.spec.tls.rotateCA,
  };
}

function leafSpecOf(input: PlanInput, role: LeafRole): LeafSpec {
  const names = childNames(input.name);
  const { tls } = input.spec;
  const common = {
    keySize: tls.keySize,
    durationMs: tls.certDurationMs,
    renewBeforeMs: tls.renewBeforeMs,
    rotateToken: tls.rotate,
  };
  return role === "ponger"
    ? {
        ...common,
        usage: "server",
        commonName: names.ponger,
        dnsNames: pongerDnsNames(input.name, input.namespace),
      }
    : { ...common, usage: "client", commonName: names.pinger, dnsNames: [] };
}

function storedCertificate(secret: V1Secret | undefined, tokenAnnotation: string): StoredCertificate {
  return {
    certificatePem: secretText(secret, "tls.crt"),
    privateKeyPem: secretText(secret, "tls.key"),
    rotateToken: secret?.metadata?.annotations?.[tokenAnnotation] ?? "",
  };
}

function planned(material: IssuedCertificate, decision: Keep): PlannedCertificate {
  return { material, info: decision.certificate, renewal: decision.renewalTime };
}

/** The stored certificate, which the policy keeps, as published. */
function keptAsStored(stored: StoredCertificate, decision: Keep): PlannedCertificate {
  const material = { certificatePem: stored.certificatePem ?? "", privateKeyPem: stored.privateKeyPem ?? "" };
  return planned(material, decision);
}

type CaPlan =
  | { readonly mint: Mint }
  | {
      readonly planned: PlannedCertificate;
      readonly reason?: MintReason;
      readonly carryOver?: readonly string[];
    };

/** Keep the stored CA, mint one, or use the one minted for this plan (carrying the old trust over). */
function planCa(input: PlanInput): CaPlan {
  const spec = caSpecOf(input);
  const stored = storedCertificate(input.stored.ca, annotations.rotateCA);
  const decision = decideCertificateAuthority({ spec, stored, now: input.now });
  if (decision.action === "keep") return { planned: keptAsStored(stored, decision) };
  const reason = { reason: decision.reason, message: decision.message };
  const minted = input.minted?.ca;
  if (!minted) {
    const { commonName, keySize, durationMs } = spec;
    return { mint: { role: "ca", ...reason, request: { commonName, keySize, durationMs } } };
  }
  const fresh = decideCertificateAuthority({
    spec,
    stored: { ...minted, rotateToken: spec.rotateToken },
    now: input.now,
  });
  if (fresh.action !== "keep") throw new MintedRejectedError("ca", fresh.message);
  // The trust to keep during the overlap: the old CA if it still parses, else what the leaves trust.
  const oldCa =
    decision.reason === "Missing" || decision.reason === "Unparsable" ? undefined : stored.certificatePem;
  return {
    planned: planned(minted, fresh),
    reason,
    carryOver: oldCa ? [oldCa] : trustedBefore(input.stored, input.now),
  };
}

type LeafPlan =
  | { readonly mint: Mint; readonly reason: MintReason }
  | { readonly planned: PlannedCertificate; readonly reason?: MintReason };

/** Keep the stored leaf, mint one under the current CA, or use the one minted for this plan. */
function planLeaf(
  input: PlanInput,
  role: LeafRole,
  ca: PlannedCertificate,
  rotation: CaRotationDecision,
): LeafPlan {
  const spec = leafSpecOf(input, role);
  const stored = storedCertificate(input.stored[role], annotations.rotate);
  const caPem = ca.material.certificatePem;
  let decision = decideLeaf({ spec, caCertificatePem: caPem, stored, now: input.now });
  // While the CAs are trusted together, a leaf of any of the old ones stays until IssueLeaves.
  if (
    decision.action === "reissue" &&
    decision.reason === "NotSignedByCA" &&
    rotation.phase === "TrustBoth"
  ) {
    for (const oldCa of rotation.previous) {
      const underOld = decideLeaf({ spec, caCertificatePem: oldCa, stored, now: input.now });
      if (underOld.action === "keep") {
        decision = underOld;
        break;
      }
    }
  }
  if (decision.action === "keep") return { planned: keptAsStored(stored, decision) };
  const reason = { reason: decision.reason, message: decision.message };
  const minted = input.minted?.[role];
  if (!minted) {
    const { usage, commonName, dnsNames, keySize, durationMs } = spec;
    const issuer = { fingerprint: ca.info.sha256Fingerprint, material: ca.material };
    return {
      mint: { role, ...reason, request: { usage, commonName, dnsNames, keySize, durationMs }, issuer },
      reason,
    };
  }
  const fresh = decideLeaf({
    spec,
    caCertificatePem: caPem,
    stored: { ...minted, rotateToken: spec.rotateToken },
    now: input.now,
  });
  if (fresh.action !== "keep") throw new MintedRejectedError(role, fresh.message);
  return { planned: planned(minted, fresh), reason };
}

function publishPlan(
  input: PlanInput,
  ca: PlannedCertificate,
  leaves: Record<LeafRole, PlannedCertificate>,
  rotation: CaRotationDecision,
  reasons: PublishPlan["reasons"],
): PublishPlan {
  const previous = [...rotation.previous];
  const caRenewal = ca.renewal;
  const checks = [
    caRenewal,
    leaves.ponger.renewal,
    leaves.pinger.renewal,
    ...(rotation.phase ? [rotation.nextCheck] : []),
  ];
  const current = (leaf: PlannedCertificate) => ({
    fingerprint: leaf.info.sha256Fingerprint,
    fromCurrentCa: true,
  });
  return {
    ca,
    leaves,
    previous,
    bundle: [ca.material.certificatePem, ...previous].join(""),
    rotation,
    // Pods that could not be read are not counted as loading: nothing is known of them.
    leavesLoading: podsWithoutLeaves(
      input.pods.observations.filter((o) => o.error === undefined),
      { ponger: current(leaves.ponger), pinger: current(leaves.pinger) },
      input.spec.tls.mode === "MutualTLS",
    ),
    nextCheck: new Date(Math.min(...checks.map((d) => d.getTime()))),
    reasons,
  };
}

/**
 * Material minted for this plan that the policy rejects: a bug in the minter or the policy, never
 * the cluster's state. Thrown so the reconcile fails loudly instead of minting forever.
 */
export class MintedRejectedError extends Error {
  override readonly name = "MintedRejectedError";
  constructor(role: CertificateRole, why: string) {
    super(`the ${role} certificate just minted does not meet the policy: ${why}`);
  }
}

/** CA certificates from the leaf Secrets' bundles that have not expired: the trust to carry over. */
function trustedBefore(stored: StoredSecrets, now: Date): string[] {
  const pems = new Map<string, string>();
  for (const secret of [stored.ponger, stored.pinger]) {
    for (const pem of validCas(secretText(secret, "ca.crt"), now)) pems.set(fingerprintOf(pem) ?? pem, pem);
  }
  return [...pems.values()];
}

function fingerprintOf(pem: string): string | undefined {
  try {
    return inspectCertificate(pem).sha256Fingerprint;
  } catch {
    return undefined;
  }
}

/** The CAs in `pems` other than `ca` itself. */
function otherThan(ca: CertificateInfo, pems: readonly string[]): string[] {
  return pems.filter((pem) => fingerprintOf(pem) !== ca.sha256Fingerprint);
}

/** CA certificates in a PEM bundle that parse and have not expired; anything else is dropped. */
function validCas(text: string | undefined, now: Date): string[] {
  try {
    return parseTrustBundle(text ?? "")
      .filter((entry) => entry.info.isCA && entry.info.notAfter > now)
      .map((entry) => entry.pem);
  } catch {
    return [];
  }
}

/** The leaf a Secret holds: its fingerprint, and whether `caPem` signed it. */
function leafInSecret(
  secret: V1Secret | undefined,
  caPem: string,
): { fingerprint: string; fromCurrentCa: boolean } | undefined {
  const pem = secretText(secret, "tls.crt");
  if (pem === undefined) return undefined;
  try {
    return { fingerprint: inspectCertificate(pem).sha256Fingerprint, fromCurrentCa: isSignedBy(pem, caPem) };
  } catch {
    return undefined;
  }
}
