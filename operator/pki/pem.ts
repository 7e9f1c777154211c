import forge from "node-forge";
import { PkiError } from "./errors.ts";
import { firstPemBlock } from "./pem-block.ts";

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
