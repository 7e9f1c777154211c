/** Finding the expected PEM block in text, with the typed errors every parser here shares. */
import { type PemBlock, splitPemBlocks } from "../../lib/pem.ts";
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
