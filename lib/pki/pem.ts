/**
 * PEM for the PKI: the first block of the expected type, and certificates and RSA keys decoded with
 * node-forge, each failure a typed PkiError. Splitting text into blocks is lib/pem.ts's, which the
 * workloads use too.
 */
import forge from "node-forge";
import { type PemBlock, splitPemBlocks } from "../pem.ts";
import { PkiError } from "./errors.ts";

function describe(what: string, text: string): string {
  return text.trim().length === 0 ? `${what} is empty` : `${what} is not valid PEM`;
}

/** The first PEM block of `text`, which must be one of `types`; throws PkiError otherwise. */
export function firstPemBlock(
  text: string,
  what: "certificate" | "private key",
  types: readonly string[],
): PemBlock {
  const blocks = splitPemBlocks(text);
  const first = blocks[0];
  if (!first) throw new PkiError("InvalidPem", describe(what, text));
  if (what === "private key" && !types.includes(first.type) && first.type.endsWith("PRIVATE KEY")) {
    throw new PkiError("UnsupportedKey", `the private key is a "${first.type}"; only RSA is supported`);
  }
  if (!types.includes(first.type)) {
    const code = what === "certificate" ? "NotACertificate" : "NotAPrivateKey";
    throw new PkiError(code, `expected a ${what} (PEM "${types.join('" or "')}") but found "${first.type}"`);
  }
  return first;
}

/** Parses the first certificate in `text`. Throws PkiError for anything else. */
export function parseCertificate(text: string): forge.pki.Certificate {
  const block = firstPemBlock(text, "certificate", ["CERTIFICATE"]);
  try {
    return forge.pki.certificateFromPem(block.text);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (/OID is not RSA/i.test(message)) {
      throw new PkiError("UnsupportedKey", "the certificate's key is not RSA; only RSA is supported", {
        cause: error,
      });
    }
    throw new PkiError("InvalidPem", `the certificate does not decode: ${message}`, { cause: error });
  }
}

/** Parses an RSA private key in PKCS#1 ("RSA PRIVATE KEY") or PKCS#8 ("PRIVATE KEY") PEM. */
export function parsePrivateKey(text: string): forge.pki.rsa.PrivateKey {
  const block = firstPemBlock(text, "private key", ["RSA PRIVATE KEY", "PRIVATE KEY"]);
  try {
    return forge.pki.privateKeyFromPem(block.text);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (/not RSA|OID|RSAPrivateKey/i.test(message)) {
      throw new PkiError("UnsupportedKey", "the private key is not RSA; only RSA is supported", {
        cause: error,
      });
    }
    throw new PkiError("InvalidPem", `the private key does not decode: ${message}`, { cause: error });
  }
}

export function privateKeyToPem(key: forge.pki.rsa.PrivateKey): string {
  return forge.pki.privateKeyInfoToPem(forge.pki.wrapRsaPrivateKey(forge.pki.privateKeyToAsn1(key)));
}
