import { createHash } from "node:crypto";
import forge from "node-forge";
import { PkiError } from "./errors.ts";
import { parseCertificate, parsePrivateKey } from "./pem.ts";

/** What the operator needs to know about a certificate, in plain data. */
export interface CertificateInfo {
  /** Lower-case hex, as openssl prints it without colons. */
  readonly serial: string;
  readonly subjectCommonName: string;
  readonly issuerCommonName: string;
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** Upper-case hex pairs joined by ":", the format of Node's X509Certificate.fingerprint256. */
  readonly sha256Fingerprint: string;
  readonly keySize: number;
  readonly isCA: boolean;
  readonly extendedKeyUsages: readonly ("serverAuth" | "clientAuth")[];
}

export function fingerprintOf(cert: forge.pki.Certificate): string {
  const der = forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes();
  const hex = createHash("sha256").update(Buffer.from(der, "binary")).digest("hex").toUpperCase();
  return hex.replace(/(..)(?!$)/g, "$1:");
}

function commonName(attrs: forge.pki.CertificateField[]): string {
  const cn = attrs.find((a) => a.shortName === "CN")?.value;
  return typeof cn === "string" ? cn : "";
}

interface AltName {
  type: number;
  value?: string;
  ip?: string;
}

export function describeCertificate(cert: forge.pki.Certificate): CertificateInfo {
  // forge types extensions loosely; these are the fields it fills in when decoding.
  const altNames = (cert.getExtension("subjectAltName") as { altNames?: AltName[] } | null)?.altNames ?? [];
  const constraints = cert.getExtension("basicConstraints") as { cA?: boolean } | null;
  const eku = cert.getExtension("extKeyUsage") as { serverAuth?: boolean; clientAuth?: boolean } | null;
  const publicKey = cert.publicKey as forge.pki.rsa.PublicKey;
  return {
    serial: cert.serialNumber.toLowerCase(),
    subjectCommonName: commonName(cert.subject.attributes),
    issuerCommonName: commonName(cert.issuer.attributes),
    dnsNames: altNames.flatMap((n) => (n.type === 2 && typeof n.value === "string" ? [n.value] : [])),
    ipAddresses: altNames.flatMap((n) => (n.type === 7 && typeof n.ip === "string" ? [n.ip] : [])),
    notBefore: cert.validity.notBefore,
    notAfter: cert.validity.notAfter,
    sha256Fingerprint: fingerprintOf(cert),
    keySize: publicKey.n.bitLength(),
    isCA: constraints?.cA === true,
    extendedKeyUsages: [
      ...(eku?.serverAuth ? (["serverAuth"] as const) : []),
      ...(eku?.clientAuth ? (["clientAuth"] as const) : []),
    ],
  };
}

/** Parses and describes a PEM certificate. Throws PkiError for anything that is not one. */
export function inspectCertificate(pem: string): CertificateInfo {
  return describeCertificate(parseCertificate(pem));
}

/** Whether the private key is the one whose public half the certificate carries. */
export function keyMatchesCertificate(keyPem: string, certificatePem: string): boolean {
  const key = parsePrivateKey(keyPem);
  const publicKey = parseCertificate(certificatePem).publicKey as forge.pki.rsa.PublicKey;
  return key.n.equals(publicKey.n) && key.e.equals(publicKey.e);
}

export function keySizeOf(keyPem: string): number {
  return parsePrivateKey(keyPem).n.bitLength();
}

/** Whether `certificatePem` carries a valid signature by the CA in `caPem` (and names it as issuer). */
export function isSignedBy(certificatePem: string, caPem: string): boolean {
  const cert = parseCertificate(certificatePem);
  const ca = parseCertificate(caPem);
  try {
    return ca.verify(cert);
  } catch (error) {
    // forge throws when the issuer name does not match the CA's subject: that is a "no".
    if (error instanceof PkiError) throw error;
    return false;
  }
}
