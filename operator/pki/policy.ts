/**
 * Rotation decisions as chains of pure checks, in the manner of cert-manager's policies: each check
 * looks at the desired spec, what is stored and the clock, and either finds a reason to (re)issue or
 * passes. The first reason wins. Nothing here throws: stored material that does not parse is itself
 * a reason.
 */
import { formatDuration } from "../../lib/duration.ts";
import { PkiError } from "../../lib/pki/errors.ts";
import {
  type CertificateInfo,
  inspectCertificate,
  isSignedBy,
  keyMatchesCertificate,
} from "../../lib/pki/inspect.ts";
import { clockSkewAllowanceMs, type KeySize } from "../../lib/pki/mint.ts";

export type ReissueReason =
  | "Missing"
  | "Unparsable"
  | "KeyMismatch"
  | "NotACA"
  | "NotSignedByCA"
  | "RotateRequested"
  | "UsageDiffers"
  | "SubjectDiffers"
  | "SANsDiffer"
  | "KeySizeDiffers"
  | "DurationChanged"
  | "RenewalDue"
  | "CANearExpiry";

export interface Reissue {
  readonly action: "reissue";
  readonly reason: ReissueReason;
  readonly message: string;
}

export interface Keep {
  readonly action: "keep";
  readonly certificate: CertificateInfo;
  /** When this certificate should be renewed: the operator requeues exactly then. */
  readonly renewalTime: Date;
}

export type Decision = Keep | Reissue;

/** What is stored today, as read from a Secret. Any field may be missing or garbage. */
export interface StoredCertificate {
  readonly certificatePem?: string | undefined;
  readonly privateKeyPem?: string | undefined;
  /** The rotate token the certificate was issued under (kept beside it, e.g. as an annotation). */
  readonly rotateToken?: string | undefined;
}

export interface CertificateSpec {
  readonly keySize: KeySize;
  readonly durationMs: number;
  readonly renewBeforeMs: number;
  /** Changing this token asks for a new certificate now. */
  readonly rotateToken: string;
}

export interface CertificateAuthoritySpec extends CertificateSpec {
  readonly commonName: string;
}

export interface LeafSpec extends CertificateSpec {
  readonly usage: "server" | "client";
  readonly commonName: string;
  readonly dnsNames: readonly string[];
  readonly ipAddresses?: readonly string[];
}

/** X.509 times have one-second resolution. */
const durationToleranceMs = 2_000;

/**
 * When to renew a certificate: renewBefore ahead of notAfter, or at two thirds of its life when
 * renewBefore is not shorter than the lifetime (as cert-manager does).
 */
export function renewalTimeOf(cert: CertificateInfo, renewBeforeMs: number): Date {
  const lifetime = cert.notAfter.getTime() - cert.notBefore.getTime();
  const before = renewBeforeMs > 0 && renewBeforeMs < lifetime ? renewBeforeMs : lifetime / 3;
  return new Date(cert.notAfter.getTime() - before);
}

function reissue(reason: ReissueReason, message: string): Reissue {
  return { action: "reissue", reason, message };
}

function describeError(error: unknown): string {
  return error instanceof PkiError ? error.message : `unexpected error: ${String(error)}`;
}

type Parsed = { ok: true; cert: CertificateInfo } | { ok: false; problem: Reissue };

/** The checks every certificate starts with: present, parsable, and the key belongs to it. */
function readStored(what: string, stored: StoredCertificate | undefined): Parsed {
  if (!stored?.certificatePem || !stored.privateKeyPem) {
    const missing = !stored?.certificatePem ? "certificate" : "private key";
    return { ok: false, problem: reissue("Missing", `the ${what} ${missing} is missing`) };
  }
  let cert: CertificateInfo;
  try {
    cert = inspectCertificate(stored.certificatePem);
  } catch (error) {
    return { ok: false, problem: reissue("Unparsable", `the ${what} certificate: ${describeError(error)}`) };
  }
  try {
    if (!keyMatchesCertificate(stored.privateKeyPem, stored.certificatePem)) {
      return {
        ok: false,
        problem: reissue("KeyMismatch", `the ${what} private key does not match its certificate`),
      };
    }
  } catch (error) {
    return { ok: false, problem: reissue("Unparsable", `the ${what} private key: ${describeError(error)}`) };
  }
  return { ok: true, cert };
}

type Check<I> = (input: I) => Reissue | undefined;

function firstViolation<I>(checks: readonly Check<I>[], input: I): Reissue | undefined {
  for (const check of checks) {
    const found = check(input);
    if (found) return found;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// The CA

export interface CertificateAuthorityInput {
  readonly spec: CertificateAuthoritySpec;
  readonly stored: StoredCertificate | undefined;
  readonly now: Date;
}

interface ParsedCaInput extends CertificateAuthorityInput {
  readonly cert: CertificateInfo;
}

const caChecks: readonly Check<ParsedCaInput>[] = [
  ({ cert }) =>
    cert.isCA
      ? undefined
      : reissue("NotACA", "the stored CA certificate is not a CA (basicConstraints CA:FALSE)"),
  ({ spec, stored }) =>
    (stored?.rotateToken ?? "") === spec.rotateToken
      ? undefined
      : reissue("RotateRequested", `CA rotation requested (rotateCA changed to "${spec.rotateToken}")`),
  ({ spec, cert, now }) => {
    const renewal = renewalTimeOf(cert, spec.renewBeforeMs);
    return now.getTime() < renewal.getTime()
      ? undefined
      : reissue(
          "CANearExpiry",
          `the CA expires at ${cert.notAfter.toISOString()} and was due for renewal at ${renewal.toISOString()}`,
        );
  },
];

/** Whether the CA must be minted anew. Key size and duration apply at the next CA rotation. */
export function decideCertificateAuthority(input: CertificateAuthorityInput): Decision {
  const parsed = readStored("CA", input.stored);
  if (!parsed.ok) return parsed.problem;
  const violation = firstViolation(caChecks, { ...input, cert: parsed.cert });
  return (
    violation ?? {
      action: "keep",
      certificate: parsed.cert,
      renewalTime: renewalTimeOf(parsed.cert, input.spec.renewBeforeMs),
    }
  );
}

// ---------------------------------------------------------------------------------------------
// Leaves

export interface LeafInput {
  readonly spec: LeafSpec;
  /** The current CA certificate (PEM). */
  readonly caCertificatePem: string;
  readonly stored: StoredCertificate | undefined;
  readonly now: Date;
}

interface ParsedLeafInput extends LeafInput {
  readonly cert: CertificateInfo;
  readonly ca: CertificateInfo | undefined;
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  const left = [...new Set(a)].sort();
  const right = [...new Set(b)].sort();
  return left.length === right.length && left.every((name, i) => name === right[i]);
}

function signedBy(certificatePem: string, caPem: string): boolean {
  try {
    return isSignedBy(certificatePem, caPem);
  } catch {
    return false;
  }
}

/** A leaf whose notAfter is the CA's notAfter was cut short by the CA, not by its spec. */
function cappedByCA(cert: CertificateInfo, ca: CertificateInfo | undefined): boolean {
  return ca !== undefined && Math.abs(cert.notAfter.getTime() - ca.notAfter.getTime()) < 1_000;
}

const leafChecks: readonly Check<ParsedLeafInput>[] = [
  ({ stored, caCertificatePem, ca }) =>
    ca !== undefined && signedBy(stored?.certificatePem ?? "", caCertificatePem)
      ? undefined
      : reissue("NotSignedByCA", "the certificate was not signed by the current CA"),
  ({ spec, stored }) =>
    (stored?.rotateToken ?? "") === spec.rotateToken
      ? undefined
      : reissue("RotateRequested", `rotation requested (rotate changed to "${spec.rotateToken}")`),
  ({ spec, cert }) => {
    const wanted = spec.usage === "server" ? "serverAuth" : "clientAuth";
    return cert.extendedKeyUsages.length === 1 && cert.extendedKeyUsages[0] === wanted
      ? undefined
      : reissue(
          "UsageDiffers",
          `extended key usage is [${cert.extendedKeyUsages.join(", ")}], want [${wanted}]`,
        );
  },
  ({ spec, cert }) =>
    cert.subjectCommonName === spec.commonName
      ? undefined
      : reissue("SubjectDiffers", `common name is "${cert.subjectCommonName}", want "${spec.commonName}"`),
  ({ spec, cert }) => {
    const have = [...cert.dnsNames, ...cert.ipAddresses];
    const want = [...spec.dnsNames, ...(spec.ipAddresses ?? [])];
    return sameNames(have, want)
      ? undefined
      : reissue(
          "SANsDiffer",
          `subject alternative names are [${have.join(", ")}], want [${want.join(", ")}]`,
        );
  },
  ({ spec, cert }) =>
    cert.keySize === spec.keySize
      ? undefined
      : reissue("KeySizeDiffers", `key size is ${cert.keySize} bits, want ${spec.keySize}`),
  ({ spec, cert, ca }) => {
    if (cappedByCA(cert, ca)) return undefined;
    // Minting backdates notBefore by the clock-skew allowance, so the lifetime is duration + allowance.
    const duration = cert.notAfter.getTime() - cert.notBefore.getTime() - clockSkewAllowanceMs;
    return Math.abs(duration - spec.durationMs) <= durationToleranceMs
      ? undefined
      : reissue(
          "DurationChanged",
          `certificate duration is ${formatDuration(duration)}, want ${formatDuration(spec.durationMs)}`,
        );
  },
  ({ spec, cert, ca, now }) => {
    const renewal = renewalTimeOf(cert, spec.renewBeforeMs);
    if (now.getTime() < renewal.getTime()) return undefined;
    return cappedByCA(cert, ca)
      ? reissue(
          "CANearExpiry",
          `the certificate cannot outlive its CA, which expires at ${cert.notAfter.toISOString()}`,
        )
      : reissue(
          "RenewalDue",
          `the certificate expires at ${cert.notAfter.toISOString()}, renewal was due at ${renewal.toISOString()}`,
        );
  },
];

/** Whether a leaf must be (re)issued from the current CA. */
export function decideLeaf(input: LeafInput): Decision {
  const parsed = readStored(input.spec.usage === "server" ? "server" : "client", input.stored);
  if (!parsed.ok) return parsed.problem;
  let ca: CertificateInfo | undefined;
  try {
    ca = inspectCertificate(input.caCertificatePem);
  } catch {
    ca = undefined;
  }
  const violation = firstViolation(leafChecks, { ...input, cert: parsed.cert, ca });
  return (
    violation ?? {
      action: "keep",
      certificate: parsed.cert,
      renewalTime: renewalTimeOf(parsed.cert, input.spec.renewBeforeMs),
    }
  );
}
