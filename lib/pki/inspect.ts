/**
 * Reading certificates and keys, natively (node:crypto, i.e. OpenSSL). The operator checks every
 * pair's certificates on every reconcile, so this runs on the main thread and must be cheap;
 * node-forge is used only to mint, in worker threads.
 */
import { createHash, createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import { PkiError } from "./errors.ts";
import { firstPemBlock } from "./pem.ts";

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

const serverAuth = "1.3.6.1.5.5.7.3.1";
const clientAuth = "1.3.6.1.5.5.7.3.2";

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Parses the first certificate in `pem`. Throws PkiError for anything else, or a key that is not RSA. */
export function parseX509(pem: string): X509Certificate {
  const block = firstPemBlock(pem, "certificate", ["CERTIFICATE"]);
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(block.text);
  } catch (error) {
    throw new PkiError("InvalidPem", `the certificate does not decode: ${message(error)}`, { cause: error });
  }
  if (cert.publicKey.asymmetricKeyType !== "rsa") {
    throw new PkiError("UnsupportedKey", "the certificate's key is not RSA; only RSA is supported");
  }
  return cert;
}

/** Parses an RSA private key in PKCS#1 or PKCS#8 PEM. Throws PkiError for anything else. */
export function parseKey(pem: string): KeyObject {
  const block = firstPemBlock(pem, "private key", ["RSA PRIVATE KEY", "PRIVATE KEY"]);
  let key: KeyObject;
  try {
    key = createPrivateKey(block.text);
  } catch (error) {
    // OpenSSL's message never contains the key; still, keep it to the reason.
    throw new PkiError("InvalidPem", `the private key does not decode: ${message(error)}`, { cause: error });
  }
  if (key.asymmetricKeyType !== "rsa") {
    throw new PkiError(
      "UnsupportedKey",
      `the private key is ${key.asymmetricKeyType ?? "not RSA"}; only RSA is supported`,
    );
  }
  return key;
}

function commonName(distinguishedName: string): string {
  return /^CN=(.*)$/m.exec(distinguishedName)?.[1] ?? "";
}

function altNames(cert: X509Certificate, prefix: string): string[] {
  return (cert.subjectAltName ?? "")
    .split(", ")
    .filter((name) => name.startsWith(prefix))
    .map((name) => name.slice(prefix.length));
}

/** `oids` is X509Certificate.keyUsage: typed as always present, but undefined without an EKU extension. */
function extendedKeyUsages(oids: readonly string[] | undefined): ("serverAuth" | "clientAuth")[] {
  return [
    ...(oids?.includes(serverAuth) ? (["serverAuth"] as const) : []),
    ...(oids?.includes(clientAuth) ? (["clientAuth"] as const) : []),
  ];
}

export function describeX509(cert: X509Certificate): CertificateInfo {
  return {
    serial: cert.serialNumber.toLowerCase(),
    subjectCommonName: commonName(cert.subject),
    issuerCommonName: commonName(cert.issuer),
    dnsNames: altNames(cert, "DNS:"),
    ipAddresses: altNames(cert, "IP Address:"),
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    sha256Fingerprint: cert.fingerprint256,
    keySize: cert.publicKey.asymmetricKeyDetails?.modulusLength ?? 0,
    isCA: cert.ca,
    extendedKeyUsages: extendedKeyUsages(cert.keyUsage),
  };
}

/** Parses and describes a PEM certificate. Throws PkiError for anything that is not one. */
export function inspectCertificate(pem: string): CertificateInfo {
  return describeX509(parseX509(pem));
}

/** The SHA-256 fingerprint of a DER certificate, in X509Certificate.fingerprint256's format. */
export function fingerprintOfDer(der: Buffer): string {
  return createHash("sha256")
    .update(der)
    .digest("hex")
    .toUpperCase()
    .replace(/(..)(?!$)/g, "$1:");
}

/** Whether the private key is the one whose public half the certificate carries. */
export function keyMatchesCertificate(keyPem: string, certificatePem: string): boolean {
  const key = parseKey(keyPem);
  return parseX509(certificatePem).checkPrivateKey(key);
}

export function keySizeOf(keyPem: string): number {
  return parseKey(keyPem).asymmetricKeyDetails?.modulusLength ?? 0;
}

/** Whether `certificatePem` names the CA in `caPem` as issuer and carries a valid signature by it. */
export function isSignedBy(certificatePem: string, caPem: string): boolean {
  const cert = parseX509(certificatePem);
  const ca = parseX509(caPem);
  return cert.checkIssued(ca) && cert.verify(ca.publicKey);
}
