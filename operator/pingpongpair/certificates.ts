/**
 * A pair's certificates: decide with the PKI policies what to keep and what to issue, mint what is
 * needed, and build the three Secrets. A CA rotation keeps trust overlapping so no ping fails; its
 * steps (ca-rotation.ts) advance when the pods report the new material loaded. A lost or corrupted
 * CA Secret is rotated the same way, carrying over the old CA certificate from the leaf Secrets'
 * ca.crt. Everything here is decided from its inputs; the caller does the I/O.
 */
import type { V1Secret } from "@kubernetes/client-node";
import type { ResolvedSpec } from "../api/spec.ts";
import type { CertificateStatus, PingPongPair } from "../api/types.ts";
import { parseTrustBundle } from "../../lib/pki/bundle.ts";
import { type CertificateInfo, inspectCertificate, isSignedBy } from "../../lib/pki/inspect.ts";
import type { IssuedCertificate } from "../../lib/pki/mint.ts";
import type { CertificateMinter } from "../pki/minter.ts";
import {
  type Decision,
  decideCertificateAuthority,
  decideLeaf,
  type LeafSpec,
  type ReissueReason,
  renewalTimeOf,
} from "../pki/policy.ts";
import {
  type CaRotationPhase,
  decideCaRotation,
  type PodObservation,
  podsWithoutLeaves,
} from "./ca-rotation.ts";
import { annotations, childNames, labels, ownerReference, pongerDnsNames } from "./names.ts";
export type CertificateRole = "ca" | "ponger" | "pinger";

export interface StoredSecrets {
  readonly ca?: V1Secret | undefined;
  readonly ponger?: V1Secret | undefined;
  readonly pinger?: V1Secret | undefined;
}

export interface Issuance {
  readonly role: CertificateRole;
  readonly reason: ReissueReason;
  readonly message: string;
  readonly serial: string;
}

export interface CertificatesResult {
  /** The three Secrets as they should be; apply them all (unchanged ones are no-ops). */
  readonly secrets: V1Secret[];
  readonly issued: Issuance[];
  readonly status: {
    readonly ca: CertificateStatus;
    readonly certificates: { ponger: CertificateStatus; pinger: CertificateStatus; expires: string };
  };
  readonly caRotation:
    | {
        readonly phase: CaRotationPhase;
        readonly since: Date;
        readonly waitingFor: readonly string[];
        readonly overdue: boolean;
        readonly basis: "pods" | "time";
      }
    | undefined;
  /** The CA rotation started, advanced or finished in this reconcile. */
  readonly caRotationAdvanced: boolean;
  /** Running pods that have not loaded the leaf certificate their role has now. */
  readonly leavesLoading: readonly string[];
  /** When to look again: the earliest renewal or the end of the current rotation phase. */
  readonly nextCheck: Date;
}

export interface CertificatesInput {
  readonly pair: PingPongPair;
  readonly spec: ResolvedSpec;
  readonly stored: StoredSecrets;
  readonly minter: CertificateMinter;
  readonly now: Date;
  /** The least time a CA rotation step lasts. */
  readonly rotationStepMs: number;
  /** What the pair's running pods report having loaded, and how many run. */
  readonly pods?: { readonly observations: readonly PodObservation[]; readonly running: number };
}

/** A CA rotation waits this many steps for lagging pods before it says they lag. */
export const rotationMaxWaitSteps = 5;

export function secretText(secret: V1Secret | undefined, key: string): string | undefined {
  const value = secret?.data?.[key];
  return value === undefined ? undefined : Buffer.from(value, "base64").toString("utf8");
}

const base64 = (text: string) => Buffer.from(text, "utf8").toString("base64");

function describe(info: CertificateInfo, renewalTime: Date): CertificateStatus {
  return {
    serial: info.serial,
    notBefore: info.notBefore.toISOString(),
    notAfter: info.notAfter.toISOString(),
    renewalTime: renewalTime.toISOString(),
    sha256Fingerprint: info.sha256Fingerprint,
  };
}

/** CA certificates from the leaf Secrets' bundles that have not expired: the trust to carry over. */
function trustedBefore(stored: StoredSecrets, now: Date): string[] {
  const pems = new Map<string, string>();
  for (const secret of [stored.ponger, stored.pinger]) {
    try {
      for (const entry of parseTrustBundle(secretText(secret, "ca.crt") ?? "")) {
        if (entry.info.isCA && entry.info.notAfter > now) pems.set(entry.info.sha256Fingerprint, entry.pem);
      }
    } catch {
      // An unusable bundle carries nothing over.
    }
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

function keepOrThrow(decision: Decision): Extract<Decision, { action: "keep" }> {
  if (decision.action !== "keep") throw new Error(`expected a kept certificate, got ${decision.reason}`);
  return decision;
}

export async function reconcileCertificates(input: CertificatesInput): Promise<CertificatesResult> {
  const { pair, spec, stored, minter, now, rotationStepMs } = input;
  const name = pair.metadata?.name ?? "";
  const namespace = pair.metadata?.namespace ?? "";
  const names = childNames(name);
  const issued: Issuance[] = [];

  // --- The CA ---------------------------------------------------------------------------------
  const caSpec = {
    commonName: `${name}-ca`,
    keySize: spec.tls.keySize,
    durationMs: spec.tls.caDurationMs,
    renewBeforeMs: Math.floor(spec.tls.caDurationMs / 3),
    rotateToken: spec.tls.rotateCA,
  };
  const storedCa = {
    certificatePem: secretText(stored.ca, "tls.crt"),
    privateKeyPem: secretText(stored.ca, "tls.key"),
    rotateToken: stored.ca?.metadata?.annotations?.[annotations.rotateCA] ?? "",
  };
  const caDecision = decideCertificateAuthority({ spec: caSpec, stored: storedCa, now });
  let ca: IssuedCertificate;
  let caInfo: CertificateInfo;
  let replaced: { carryOver: string[] } | undefined;
  if (caDecision.action === "keep") {
    ca = { certificatePem: storedCa.certificatePem ?? "", privateKeyPem: storedCa.privateKeyPem ?? "" };
    caInfo = caDecision.certificate;
  } else {
    // The trust to keep during the overlap: the old CA if it still parses, else what the leaves trust.
    const oldCa =
      caDecision.reason === "Missing" || caDecision.reason === "Unparsable"
        ? undefined
        : storedCa.certificatePem;
    replaced = { carryOver: oldCa ? [oldCa] : trustedBefore(stored, now) };
    ca = await minter.createCertificateAuthority(
      { commonName: caSpec.commonName, keySize: caSpec.keySize, durationMs: caSpec.durationMs },
      now,
    );
    caInfo = keepOrThrow(
      decideCertificateAuthority({ spec: caSpec, stored: { ...ca, rotateToken: caSpec.rotateToken }, now }),
    ).certificate;
    issued.push({
      role: "ca",
      reason: caDecision.reason,
      message: caDecision.message,
      serial: caInfo.serial,
    });
  }

  // The CA rotation: what the Secrets hold, what the pods have loaded, the time.
  const storedLeaves = {
    ponger: leafInSecret(stored.ponger, ca.certificatePem),
    pinger: leafInSecret(stored.pinger, ca.certificatePem),
  };
  const observations = input.pods?.observations ?? [];
  const rotation = decideCaRotation({
    now,
    minDwellMs: rotationStepMs,
    maxWaitMs: rotationMaxWaitSteps * rotationStepMs,
    stored: {
      phase: stored.ca?.metadata?.annotations?.[annotations.caRotationPhase],
      since: stored.ca?.metadata?.annotations?.[annotations.caRotationSince],
      previous: validCas(secretText(stored.ca, "previous.crt"), now).filter(
        (pem) => fingerprintOf(pem) !== caInfo.sha256Fingerprint,
      ),
    },
    replaced: replaced && {
      carryOver: replaced.carryOver.filter((pem) => fingerprintOf(pem) !== caInfo.sha256Fingerprint),
    },
    caFingerprint: caInfo.sha256Fingerprint,
    leaves: storedLeaves,
    pods: observations,
    running: input.pods?.running ?? 0,
    mutualTls: spec.tls.mode === "MutualTLS",
  });
  const phase = rotation.phase;
  const since = rotation.since;
  const previous = [...rotation.previous];
  const bundle = [ca.certificatePem, ...previous].join("");

  // --- The leaves -----------------------------------------------------------------------------
  const leafSpecs: Record<"ponger" | "pinger", LeafSpec> = {
    ponger: {
      usage: "server",
      commonName: names.ponger,
      dnsNames: pongerDnsNames(name, namespace),
      keySize: spec.tls.keySize,
      durationMs: spec.tls.certDurationMs,
      renewBeforeMs: spec.tls.renewBeforeMs,
      rotateToken: spec.tls.rotate,
    },
    pinger: {
      usage: "client",
      commonName: names.pinger,
      dnsNames: [],
      keySize: spec.tls.keySize,
      durationMs: spec.tls.certDurationMs,
      renewBeforeMs: spec.tls.renewBeforeMs,
      rotateToken: spec.tls.rotate,
    },
  };
  const leaves = await Promise.all(
    (["ponger", "pinger"] as const).map(async (role) => {
      const secret = stored[role];
      const storedLeaf = {
        certificatePem: secretText(secret, "tls.crt"),
        privateKeyPem: secretText(secret, "tls.key"),
        rotateToken: secret?.metadata?.annotations?.[annotations.rotate] ?? "",
      };
      const leafSpec = leafSpecs[role];
      let decision = decideLeaf({
        spec: leafSpec,
        caCertificatePem: ca.certificatePem,
        stored: storedLeaf,
        now,
      });
      // While the CAs are trusted together, a leaf of any of the old ones stays until IssueLeaves.
      if (decision.action === "reissue" && decision.reason === "NotSignedByCA" && phase === "TrustBoth") {
        for (const oldCa of previous) {
          const underOld = decideLeaf({ spec: leafSpec, caCertificatePem: oldCa, stored: storedLeaf, now });
          if (underOld.action === "keep") {
            decision = underOld;
            break;
          }
        }
      }
      if (decision.action === "keep") {
        return {
          role,
          material: storedLeaf as IssuedCertificate,
          info: decision.certificate,
          renewal: decision.renewalTime,
        };
      }
      const material = await minter.issueLeafCertificate(
        ca,
        { ...leafSpec, dnsNames: leafSpec.dnsNames, usage: leafSpec.usage },
        now,
      );
      const kept = keepOrThrow(
        decideLeaf({
          spec: leafSpec,
          caCertificatePem: ca.certificatePem,
          stored: { ...material, rotateToken: leafSpec.rotateToken },
          now,
        }),
      );
      issued.push({
        role,
        reason: decision.reason,
        message: decision.message,
        serial: kept.certificate.serial,
      });
      return { role, material, info: kept.certificate, renewal: kept.renewalTime };
    }),
  );

  // --- The Secrets ----------------------------------------------------------------------------
  const metadata = (
    secretName: string,
    component: "ponger" | "pinger" | "ca",
    extra: Record<string, string>,
  ) => ({
    name: secretName,
    namespace,
    labels: labels(name, component),
    annotations: extra,
    ownerReferences: [ownerReference(pair)],
  });
  const caSecret: V1Secret = {
    apiVersion: "v1",
    kind: "Secret",
    type: "Opaque",
    metadata: metadata(names.caSecret, "ca", {
      [annotations.rotateCA]: spec.tls.rotateCA,
      ...(phase
        ? { [annotations.caRotationPhase]: phase, [annotations.caRotationSince]: since.toISOString() }
        : {}),
    }),
    data: {
      "tls.crt": base64(ca.certificatePem),
      "tls.key": base64(ca.privateKeyPem),
      ...(previous.length > 0 ? { "previous.crt": base64(previous.join("")) } : {}),
    },
  };
  const leafSecrets = leaves.map(({ role, material }): V1Secret => ({
    apiVersion: "v1",
    kind: "Secret",
    type: "kubernetes.io/tls",
    metadata: metadata(role === "ponger" ? names.pongerSecret : names.pingerSecret, role, {
      [annotations.rotate]: spec.tls.rotate,
    }),
    data: {
      "tls.crt": base64(material.certificatePem),
      "tls.key": base64(material.privateKeyPem),
      "ca.crt": base64(bundle),
    },
  }));

  const [ponger, pinger] = leaves;
  if (!ponger || !pinger) throw new Error("both leaves must be decided");
  const caRenewal = renewalTimeOf(caInfo, caSpec.renewBeforeMs);
  const checks = [caRenewal, ponger.renewal, pinger.renewal, ...(phase ? [rotation.nextCheck] : [])];
  const leavesNow = {
    ponger: { fingerprint: ponger.info.sha256Fingerprint, fromCurrentCa: true },
    pinger: { fingerprint: pinger.info.sha256Fingerprint, fromCurrentCa: true },
  };
  return {
    secrets: [caSecret, ...leafSecrets],
    issued,
    status: {
      ca: describe(caInfo, caRenewal),
      certificates: {
        ponger: describe(ponger.info, ponger.renewal),
        pinger: describe(pinger.info, pinger.renewal),
        expires: new Date(
          Math.min(ponger.info.notAfter.getTime(), pinger.info.notAfter.getTime()),
        ).toISOString(),
      },
    },
    caRotation: phase
      ? { phase, since, waitingFor: rotation.waitingFor, overdue: rotation.overdue, basis: rotation.basis }
      : undefined,
    caRotationAdvanced: rotation.advanced,
    // Pods that could not be read are not counted as loading: nothing is known of them.
    leavesLoading: podsWithoutLeaves(
      observations.filter((o) => o.error === undefined),
      leavesNow,
      spec.tls.mode === "MutualTLS",
    ),
    nextCheck: new Date(Math.min(...checks.map((d) => d.getTime()))),
  };
}
