export type PkiErrorCode =
  | "InvalidPem" // not PEM at all, or a PEM block that does not decode
  | "NotACertificate" // PEM of another type where a certificate was expected
  | "NotAPrivateKey" // PEM of another type where a private key was expected
  | "UnsupportedKey" // a valid certificate or key that is not RSA (node-forge signs RSA only)
  | "InvalidArgument"; // a minting request that cannot produce a valid certificate

/** The one error this module throws. Callers switch on `code`; the message says what to fix. */
export class PkiError extends Error {
  override readonly name = "PkiError";
  readonly code: PkiErrorCode;

  constructor(code: PkiErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
