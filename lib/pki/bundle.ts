import { splitPemBlocks } from "../pem.ts";
import { PkiError } from "./errors.ts";
import { type CertificateInfo, describeX509, parseX509 } from "./inspect.ts";

export interface BundleEntry {
  readonly pem: string;
  readonly info: CertificateInfo;
}

/**
 * Parses a trust bundle (one or more CA certificates), dropping duplicates by fingerprint and keeping
 * the first occurrence's order. Non-certificate blocks or undecodable certificates are an error: a
 * bundle with a broken entry is a broken bundle.
 */
export function parseTrustBundle(text: string): BundleEntry[] {
  const blocks = splitPemBlocks(text);
  if (blocks.length === 0) {
    throw new PkiError(
      "InvalidPem",
      text.trim() === "" ? "the trust bundle is empty" : "the trust bundle is not PEM",
    );
  }
  const seen = new Set<string>();
  const entries: BundleEntry[] = [];
  for (const [index, block] of blocks.entries()) {
    if (block.type !== "CERTIFICATE") {
      throw new PkiError(
        "NotACertificate",
        `trust bundle entry ${index + 1} is a "${block.type}", not a certificate`,
      );
    }
    let info: CertificateInfo;
    let pem: string;
    try {
      const cert = parseX509(block.text);
      info = describeX509(cert);
      pem = cert.toString();
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new PkiError("InvalidPem", `trust bundle entry ${index + 1}: ${message}`, { cause: error });
    }
    if (seen.has(info.sha256Fingerprint)) continue;
    seen.add(info.sha256Fingerprint);
    entries.push({ pem, info });
  }
  return entries;
}

/** Joins CA certificates into one PEM bundle, de-duplicated, in the order given. */
export function buildTrustBundle(caPems: readonly string[]): string {
  return parseTrustBundle(caPems.join("\n"))
    .map((entry) => entry.pem)
    .join("");
}
