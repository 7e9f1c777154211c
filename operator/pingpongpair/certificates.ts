/**
 * A pair's certificates: decide with the PKI policies what to keep and what to issue, mint what is
 * needed, and build the three Secrets. CA rotation keeps trust overlapping so no ping fails:
 *   TrustBoth   every ca.crt holds the old and the new CA; leaves stay as they are (old CA);
 *   IssueLeaves leaves are re-issued from the new CA; ca.crt still holds both;
 *   (done)      the old CA is dropped from ca.crt.
 * Each phase lasts at least `rotationStepMs`, time for the kubelet to update the mounted volumes.
 * A lost or corrupted CA Secret is rotated the same way, carrying over the old CA certificate from
 * the leaf Secrets' ca.crt. Everything here is decided from its inputs; the caller does the I/O.
 */
import type { V1Secret } from "@kubernetes/client-node";
import type { ResolvedSpec } from "../api/spec.ts";
import type { CertificateStatus, PingPongPair } from "../api/types.ts";
import { parseTrustBundle } from "../pki/bundle.ts";
import type { CertificateInfo } from "../pki/inspect.ts";
import type { IssuedCertificate } from "../pki/mint.ts";
import type { CertificateMinter } from "../pki/minter.ts";
import {
  type Decision,
  decideCertificateAuthority,
  decideLeaf,
  type LeafSpec,
  type ReissueReason,
  renewalTimeOf,
} from "../pki/policy.ts";
import { annotations, childNames, labels, ownerReference, pongerDnsNames } from "./names.ts";

export type CaRotationPhase = "TrustBoth" | "IssueLeaves";
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
  readonly caRotation: { readonly phase: CaRotationPhase; readonly since: Date } | undefined;
  /** When to look again: the earliest renewal or the end of the current rotation phase. */
  readonly nextCheck: Date;
}

export interface CertificatesInput {
  readonly pair: PingPongPair;
  readonly spec: ResolvedSpec;
  readonly stored: StoredSecrets;
  readonly minter: CertificateMinter;
  readonly now: Date;
  readonly rotationStepMs: number;
}

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
  let previous: string[];
  let phase: CaRotationPhase | undefined;
  let since: Date;
  if (caDecision.action === "keep") {
    ca = { certificatePem: storedCa.certificatePem ?? "", privateKeyPem: storedCa.privateKeyPem ?? "" };
    caInfo = caDecision.certificate;
    previous = (() => {
      try {
        return parseTrustBundle(secretText(stored.ca, "previous.crt") ?? "").map((e) => e.pem);
      } catch {
        return [];
      }
    })();
    const storedPhase = stored.ca?.metadata?.annotations?.[annotations.caRotationPhase];
    phase = storedPhase === "TrustBoth" || storedPhase === "IssueLeaves" ? storedPhase : undefined;
    since = new Date(stored.ca?.metadata?.annotations?.[annotations.caRotationSince] ?? now.toISOString());
    if (phase === undefined) previous = [];
  } else {
    // The trust to keep during the overlap: the old CA if it still parses, else what the leaves trust.
    const oldCa =
      caDecision.reason === "Missing" || caDecision.reason === "Unparsable"
        ? undefined
        : storedCa.certificatePem;
    previous = oldCa ? [oldCa] : trustedBefore(stored, now);
    ca = await minter.createCertificateAuthority(
      { commonName: caSpec.commonName, keySize: caSpec.keySize, durationMs: caSpec.durationMs },
      now,
    );
    caInfo = keepOrThrow(
      decideCertificateAuthority({ spec: caSpec, stored: { ...ca, rotateToken: caSpec.rotateToken }, now }),
    ).certificate;
    phase = previous.length > 0 ? "TrustBoth" : undefined;
    since = now;
    issued.push({
      role: "ca",
      reason: caDecision.reason,
      message: caDecision.message,
      serial: caInfo.serial,
    });
  }

  // Advance the rotation once the current phase has lasted long enough.
  if (phase !== undefined && now.getTime() - since.getTime() >= rotationStepMs) {
    if (phase === "TrustBoth") {
      phase = "IssueLeaves";
    } else {
      phase = undefined;
      previous = [];
    }
    since = now;
  }
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
      // While both CAs are trusted, a leaf of the old CA stays until the IssueLeaves phase.
      const oldCa = previous[0];
      if (
        decision.action === "reissue" &&
        decision.reason === "NotSignedByCA" &&
        phase === "TrustBoth" &&
        oldCa
      ) {
        const underOld = decideLeaf({ spec: leafSpec, caCertificatePem: oldCa, stored: storedLeaf, now });
        if (underOld.action === "keep") decision = underOld;
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
  const checks = [
    caRenewal,
    ponger.renewal,
    pinger.renewal,
    ...(phase ? [new Date(since.getTime() + rotationStepMs)] : []),
  ];
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
    caRotation: phase ? { phase, since } : undefined,
    nextCheck: new Date(Math.min(...checks.map((d) => d.getTime()))),
  };
}
