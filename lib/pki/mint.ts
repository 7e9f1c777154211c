import { randomBytes } from "node:crypto";
import { isIP } from "node:net";
import forge from "node-forge";
import { PkiError } from "./errors.ts";
import { fingerprintOfDer } from "./inspect.ts";
import { parseCertificate, parsePrivateKey, privateKeyToPem } from "./pem.ts";

export const keySizes = [2048, 3072, 4096] as const;
export type KeySize = (typeof keySizes)[number];

/** notBefore is set this far in the past so that a peer whose clock runs behind accepts the certificate. */
export const clockSkewAllowanceMs = 5 * 60_000;

export interface CertificateAuthorityRequest {
  readonly commonName: string;
  readonly keySize: KeySize;
  readonly durationMs: number;
}

export interface LeafRequest {
  /** server: EKU serverAuth with `dnsNames` as SANs. client: EKU clientAuth, identified by `commonName`. */
  readonly usage: "server" | "client";
  readonly commonName: string;
  readonly dnsNames: readonly string[];
  /** IP SANs, for servers reached by address (tests on loopback). */
  readonly ipAddresses?: readonly string[];
  readonly keySize: KeySize;
  readonly durationMs: number;
}

export interface IssuedCertificate {
  readonly certificatePem: string;
  readonly privateKeyPem: string;
}

/** RSA key generation through node-forge's asynchronous path, which uses Node's native generator. */
export function generateRsaKeyPair(bits: KeySize): Promise<forge.pki.rsa.KeyPair> {
  return new Promise((resolve, reject) => {
    forge.pki.rsa.generateKeyPair({ bits, e: 0x10001 }, (error: Error | null, pair) => {
      if (error) reject(error);
      else resolve(pair);
    });
  });
}

/** A random positive serial of 126 bits: top bit clear (positive), next bit set (fixed length). */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40;
  return bytes.toString("hex");
}

const dnsLabel = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

function checkCommonName(commonName: string): void {
  if (commonName.length === 0 || commonName.length > 64) {
    throw new PkiError("InvalidArgument", `common name "${commonName}" must be 1 to 64 characters long`);
  }
}

function checkRequest(keySize: number, durationMs: number): void {
  if (!(keySizes as readonly number[]).includes(keySize)) {
    throw new PkiError(
      "InvalidArgument",
      `key size ${keySize} is not supported: use one of ${keySizes.join(", ")}`,
    );
  }
  if (!Number.isFinite(durationMs) || durationMs <= 0) {
    throw new PkiError(
      "InvalidArgument",
      `duration ${durationMs} ms must be a positive number of milliseconds`,
    );
  }
}

function checkDnsName(name: string): void {
  if (name.length > 253 || !name.split(".").every((label) => dnsLabel.test(label))) {
    throw new PkiError("InvalidArgument", `"${name}" is not a valid DNS name (lower-case RFC 1123 labels)`);
  }
}

function newCertificate(publicKey: forge.pki.rsa.PublicKey, notBefore: Date, notAfter: Date) {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = randomSerial();
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = notAfter;
  return cert;
}

/** Mints a self-signed CA: CA:TRUE pathlen 0, keyCertSign + cRLSign, SHA-256. */
export async function createCertificateAuthority(
  request: CertificateAuthorityRequest,
  now: Date = new Date(),
): Promise<IssuedCertificate> {
  checkRequest(request.keySize, request.durationMs);
  checkCommonName(request.commonName);
  const keys = await generateRsaKeyPair(request.keySize);
  const cert = newCertificate(
    keys.publicKey,
    new Date(now.getTime() - clockSkewAllowanceMs),
    new Date(now.getTime() + request.durationMs),
  );
  const name = [{ shortName: "CN", value: request.commonName }];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([
    { name: "basicConstraints", cA: true, pathLenConstraint: 0, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return {
    certificatePem: forge.pki.certificateToPem(cert),
    privateKeyPem: privateKeyToPem(keys.privateKey),
  };
}

/** Issues a server or client leaf from `ca`, never valid beyond the CA's own notAfter. */
export async function issueLeafCertificate(
  ca: IssuedCertificate,
  request: LeafRequest,
  now: Date = new Date(),
): Promise<IssuedCertificate> {
  checkRequest(request.keySize, request.durationMs);
  checkCommonName(request.commonName);
  const ipAddresses = request.ipAddresses ?? [];
  if (request.usage === "server" && request.dnsNames.length + ipAddresses.length === 0) {
    throw new PkiError("InvalidArgument", "a server certificate needs at least one DNS name or IP address");
  }
  request.dnsNames.forEach(checkDnsName);
  for (const ip of ipAddresses) {
    if (isIP(ip) === 0) throw new PkiError("InvalidArgument", `"${ip}" is not an IP address`);
  }

  const caCert = parseCertificate(ca.certificatePem);
  const caKey = parsePrivateKey(ca.privateKeyPem);
  const caPublic = caCert.publicKey as forge.pki.rsa.PublicKey;
  if (!caKey.n.equals(caPublic.n)) {
    throw new PkiError("InvalidArgument", "the CA private key does not belong to the CA certificate");
  }
  const notBefore = new Date(now.getTime() - clockSkewAllowanceMs);
  const notAfter = new Date(Math.min(now.getTime() + request.durationMs, caCert.validity.notAfter.getTime()));
  if (notAfter.getTime() <= now.getTime()) {
    throw new PkiError(
      "InvalidArgument",
      `the CA (fingerprint ${fingerprintOfDer(Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(caCert)).getBytes(), "binary"))}) expired at ${caCert.validity.notAfter.toISOString()}; rotate the CA first`,
    );
  }

  const keys = await generateRsaKeyPair(request.keySize);
  const cert = newCertificate(keys.publicKey, notBefore, notAfter);
  cert.setSubject([{ shortName: "CN", value: request.commonName }]);
  cert.setIssuer(caCert.subject.attributes);
  const caKeyId = caCert.generateSubjectKeyIdentifier().getBytes();
  cert.setExtensions([
    { name: "basicConstraints", cA: false, critical: true },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    request.usage === "server"
      ? { name: "extKeyUsage", serverAuth: true }
      : { name: "extKeyUsage", clientAuth: true },
    ...(request.dnsNames.length + ipAddresses.length > 0
      ? [
          {
            name: "subjectAltName",
            altNames: [
              ...request.dnsNames.map((value) => ({ type: 2, value })),
              ...ipAddresses.map((ip) => ({ type: 7, ip })),
            ],
          },
        ]
      : []),
    { name: "subjectKeyIdentifier" },
    { name: "authorityKeyIdentifier", keyIdentifier: caKeyId },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return {
    certificatePem: forge.pki.certificateToPem(cert),
    privateKeyPem: privateKeyToPem(keys.privateKey),
  };
}
