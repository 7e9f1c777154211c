/**
 * Reads a workload's certificate, key and trust bundle from disk and checks them before use: every
 * file parses, the key belongs to the certificate. A problem names the file and says what is wrong.
 */
import { createHash, createPrivateKey, type KeyObject, X509Certificate as Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { errorMessage } from "../lib/logger.ts";
import { scanPem } from "../lib/pem.ts";

export interface TlsFilePaths {
  readonly certificate?: string | undefined;
  readonly privateKey?: string | undefined;
  readonly trustBundle?: string | undefined;
}

/** What /status reports about a loaded certificate. Nothing secret. */
export interface CertificateSummary {
  readonly subject: string;
  readonly serial: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly sha256Fingerprint: string;
}

export interface TlsMaterial {
  readonly certificatePem?: string | undefined;
  readonly privateKeyPem?: string | undefined;
  readonly trustBundlePem?: string | undefined;
  readonly certificate?: CertificateSummary | undefined;
  readonly trustBundle: readonly CertificateSummary[];
  /** Changes whenever any of the files' contents change. */
  readonly digest: string;
  /** Epoch milliseconds. */
  readonly loadedAt: number;
}

export class TlsFileError extends Error {
  override readonly name = "TlsFileError";
  readonly file: string;

  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.file = file;
  }
}

export function summarize(cert: Certificate): CertificateSummary {
  return {
    subject: cert.subject,
    serial: cert.serialNumber.toLowerCase(),
    notBefore: cert.validFromDate.toISOString(),
    notAfter: cert.validToDate.toISOString(),
    sha256Fingerprint: cert.fingerprint256,
  };
}

/** The three files' contents as read once, and their digest; a file that could not be read holds the error. */
export interface TlsFileTexts {
  readonly certificate: string | Error | undefined;
  readonly privateKey: string | Error | undefined;
  readonly trustBundle: string | Error | undefined;
  /** Changes whenever any of the files' contents change. */
  readonly digest: string;
}

/**
 * Reads the files once, synchronously: they are a few kilobytes on a Secret volume (memory-backed),
 * read at start and when they change. Asynchronous reads would start libuv's thread pool, four threads
 * whose stacks and allocator arenas cost a pod about 2 MiB of resident memory for nothing else it does.
 */
export function readTlsFiles(paths: TlsFilePaths): TlsFileTexts {
  const read = (file: string | undefined): string | Error | undefined => {
    if (file === undefined) return undefined;
    try {
      return readFileSync(file, "utf8");
    } catch (error) {
      return error instanceof Error ? error : new Error(String(error));
    }
  };
  const certificate = read(paths.certificate);
  const privateKey = read(paths.privateKey);
  const trustBundle = read(paths.trustBundle);
  const hash = createHash("sha256");
  for (const text of [certificate, privateKey, trustBundle]) {
    hash.update(text instanceof Error ? "\u0001unreadable" : (text ?? "")).update("\0");
  }
  return { certificate, privateKey, trustBundle, digest: hash.digest("hex") };
}

/** A file's text, checked before any parsing: readable, not too large, no half-written PEM block. */
function checkedText(file: string, text: string | Error): string {
  if (text instanceof Error) throw new TlsFileError(file, `cannot be read: ${text.message}`);
  if (text.length > maxFileBytes) {
    throw new TlsFileError(
      file,
      `is ${text.length} bytes; certificates, keys and bundles here are a few kilobytes (at most ${maxFileBytes})`,
    );
  }
  const { unterminated } = scanPem(text);
  if (unterminated) {
    throw new TlsFileError(
      file,
      `ends in an incomplete PEM block: the BEGIN ${unterminated.type} line ${unterminated.line} has no END line (a half-written file?)`,
    );
  }
  return text;
}

/** Larger files are refused before any parsing. */
export const maxFileBytes = 1024 * 1024;

function parseCertificates(file: string, text: string, what: string): Certificate[] {
  const blocks = scanPem(text).blocks.filter((b) => b.type === "CERTIFICATE");
  if (blocks.length === 0) throw new TlsFileError(file, `holds no PEM certificate (expected ${what})`);
  return blocks.map((block, i) => {
    try {
      return new Certificate(block.text);
    } catch (error) {
      throw new TlsFileError(file, `certificate ${i + 1} does not parse: ${errorMessage(error)}`);
    }
  });
}

function parsePrivateKey(file: string, text: string): KeyObject {
  if (text.includes("-----BEGIN ENCRYPTED PRIVATE KEY-----") || /^Proc-Type: 4,ENCRYPTED$/m.test(text)) {
    throw new TlsFileError(
      file,
      "is a passphrase-protected (encrypted) private key; give an unencrypted one, e.g. from `openssl pkey -in KEY -out KEY.plain`",
    );
  }
  try {
    return createPrivateKey(text);
  } catch (error) {
    // The error of a failed key parse never includes the key text; still, say only what failed.
    throw new TlsFileError(
      file,
      `is not a usable PEM private key (${(error as { code?: string }).code ?? "parse error"})`,
    );
  }
}

/**
 * Checks and parses the files, read by readTlsFiles (here, unless given: the reloader passes what it
 * read to compare digests, so each change is read once). Throws TlsFileError naming the first bad file.
 */
export function loadTlsMaterial(paths: TlsFilePaths, files: TlsFileTexts = readTlsFiles(paths)): TlsMaterial {
  const text = (file: string | undefined, read: string | Error | undefined) =>
    file === undefined || read === undefined ? undefined : checkedText(file, read);
  const certificatePem = text(paths.certificate, files.certificate);
  const privateKeyPem = text(paths.privateKey, files.privateKey);
  const trustBundlePem = text(paths.trustBundle, files.trustBundle);
  let certificate: CertificateSummary | undefined;
  if (paths.certificate !== undefined && certificatePem !== undefined) {
    const [leaf] = parseCertificates(paths.certificate, certificatePem, "the certificate");
    if (!leaf) throw new TlsFileError(paths.certificate, "holds no certificate");
    if (paths.privateKey !== undefined && privateKeyPem !== undefined) {
      const key = parsePrivateKey(paths.privateKey, privateKeyPem);
      if (!leaf.checkPrivateKey(key)) {
        throw new TlsFileError(paths.privateKey, `does not match the certificate in ${paths.certificate}`);
      }
    }
    certificate = summarize(leaf);
  }
  const trustBundle =
    paths.trustBundle !== undefined && trustBundlePem !== undefined
      ? parseCertificates(paths.trustBundle, trustBundlePem, "one or more CA certificates").map(summarize)
      : [];
  return {
    certificatePem,
    privateKeyPem,
    trustBundlePem,
    certificate,
    trustBundle,
    digest: files.digest,
    loadedAt: Date.now(),
  };
}

/** The /status view of loaded material. */
export function describeMaterial(material: TlsMaterial) {
  return {
    certificate: material.certificate ?? null,
    trustBundle: material.trustBundle,
    loadedAt: new Date(material.loadedAt).toISOString(),
  };
}
