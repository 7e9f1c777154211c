import { generateKeyPairSync, X509Certificate } from "node:crypto";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { buildTrustBundle, parseTrustBundle } from "./bundle.ts";
import { PkiError } from "./errors.ts";
import { inspectCertificate, isSignedBy, keyMatchesCertificate } from "./inspect.ts";
import { parsePrivateKey } from "./pem.ts";
import { mintTestPki, type TestPki } from "./testing/fixtures.ts";

let pki: TestPki;
let other: TestPki;

beforeAll(async () => {
  [pki, other] = await Promise.all([mintTestPki("inspect"), mintTestPki("other")]);
});

/** Garbage that looks like PEM from far away: the hardest kind for a parser. */
const pemShaped = fc
  .tuple(fc.constantFrom("CERTIFICATE", "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"), fc.uint8Array())
  .map(
    ([type, bytes]) =>
      `-----BEGIN ${type}-----\n${Buffer.from(bytes).toString("base64")}\n-----END ${type}-----\n`,
  );
const truncated = (pem: () => string) => fc.nat().map((n) => pem().slice(0, n % pem().length));
const garbage = () =>
  fc.oneof(
    fc.string(),
    fc.uint8Array().map((b) => Buffer.from(b).toString("latin1")),
    pemShaped,
    truncated(() => pki.server.certificatePem),
    truncated(() => pki.server.privateKeyPem),
  );

function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return undefined;
}

function throwsOnlyPkiError(fn: () => unknown): boolean {
  try {
    fn();
    return true;
  } catch (error) {
    return error instanceof PkiError;
  }
}

describe("inspectCertificate", () => {
  it("reads what the operator reports, agreeing with Node's own X.509 parser", () => {
    const info = inspectCertificate(pki.server.certificatePem);
    const node = new X509Certificate(pki.server.certificatePem);
    expect(info.sha256Fingerprint).toBe(node.fingerprint256);
    expect(info.serial).toBe(node.serialNumber.toLowerCase());
    expect(info.notAfter.getTime()).toBe(new Date(node.validTo).getTime());
    expect(info.dnsNames).toEqual(["localhost"]);
    expect(info.ipAddresses).toEqual(["127.0.0.1"]);
    expect(info.subjectCommonName).toBe("inspect-server");
    expect(info.issuerCommonName).toBe("inspect-ca");
    expect(info.keySize).toBe(2048);
    expect(info.isCA).toBe(false);
    expect(info.extendedKeyUsages).toEqual(["serverAuth"]);
    expect(inspectCertificate(pki.ca.certificatePem).isCA).toBe(true);
    expect(inspectCertificate(pki.client.certificatePem).extendedKeyUsages).toEqual(["clientAuth"]);
  });

  it.each([
    ["an empty string", "", "InvalidPem", /certificate is empty/],
    ["random text", "hello", "InvalidPem", /not valid PEM/],
    [
      "a private key",
      () => pki.server.privateKeyPem,
      "NotACertificate",
      /expected a certificate .* found "PRIVATE KEY"/,
    ],
    ["a truncated certificate", () => pki.server.certificatePem.slice(0, 200), "InvalidPem", /not valid PEM/],
    [
      "a certificate with a corrupted body",
      () => pki.server.certificatePem.replace(/\n[A-Za-z0-9+/]{20}/, "\nAAAAAAAAAAAAAAAAAAAA"),
      "InvalidPem",
      /does not decode/,
    ],
  ])("rejects %s with a typed error", (_, input, code, message) => {
    const text = typeof input === "function" ? input() : input;
    const error = thrownBy(() => inspectCertificate(text));
    expect(error).toBeInstanceOf(PkiError);
    expect(error).toMatchObject({ code });
    expect((error as Error).message).toMatch(message);
  });

  it("rejects an EC certificate and key as unsupported", () => {
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    const pkcs8 = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const sec1 = privateKey.export({ type: "sec1", format: "pem" }).toString();
    for (const pem of [pkcs8, sec1]) {
      expect(() => parsePrivateKey(pem)).toThrow(expect.objectContaining({ code: "UnsupportedKey" }));
    }
  });

  it("never throws anything but PkiError on garbage", () => {
    fc.assert(
      fc.property(garbage(), (text) => throwsOnlyPkiError(() => inspectCertificate(text))),
      { numRuns: 300 },
    );
  });
});

describe("keyMatchesCertificate and isSignedBy", () => {
  it("matches a key to its own certificate only", () => {
    expect(keyMatchesCertificate(pki.server.privateKeyPem, pki.server.certificatePem)).toBe(true);
    expect(keyMatchesCertificate(pki.client.privateKeyPem, pki.server.certificatePem)).toBe(false);
  });

  it("tells which CA signed a certificate", () => {
    expect(isSignedBy(pki.server.certificatePem, pki.ca.certificatePem)).toBe(true);
    expect(isSignedBy(pki.server.certificatePem, other.ca.certificatePem)).toBe(false);
    expect(isSignedBy(pki.ca.certificatePem, pki.ca.certificatePem)).toBe(true);
  });

  it("rejects a certificate where a key is expected", () => {
    expect(() => keyMatchesCertificate(pki.server.certificatePem, pki.server.certificatePem)).toThrow(
      /expected a private key .* found "CERTIFICATE"/,
    );
  });

  it("never throws anything but PkiError on garbage", () => {
    fc.assert(
      fc.property(garbage(), garbage(), (a, b) =>
        [
          () => keyMatchesCertificate(a, pki.server.certificatePem),
          () => keyMatchesCertificate(pki.server.privateKeyPem, b),
          () => isSignedBy(a, pki.ca.certificatePem),
          () => isSignedBy(pki.server.certificatePem, b),
        ].every(throwsOnlyPkiError),
      ),
      { numRuns: 200 },
    );
  });
});

describe("trust bundles", () => {
  it("builds old + new with duplicates removed, in order", () => {
    const bundle = buildTrustBundle([pki.ca.certificatePem, other.ca.certificatePem, pki.ca.certificatePem]);
    const entries = parseTrustBundle(bundle);
    expect(entries.map((e) => e.info.subjectCommonName)).toEqual(["inspect-ca", "other-ca"]);
  });

  it("parses bundles with text between the blocks, as many tools write them", () => {
    const text = `# old\n${pki.ca.certificatePem}\n# new\n${other.ca.certificatePem}`;
    expect(parseTrustBundle(text)).toHaveLength(2);
  });

  it("names the broken entry", () => {
    const broken = `${pki.ca.certificatePem}${pki.server.privateKeyPem}`;
    expect(() => parseTrustBundle(broken)).toThrow(
      /trust bundle entry 2 is a "PRIVATE KEY", not a certificate/,
    );
    expect(() => parseTrustBundle("")).toThrow(/trust bundle is empty/);
  });

  it("never throws anything but PkiError on garbage", () => {
    fc.assert(
      fc.property(garbage(), (text) =>
        throwsOnlyPkiError(() => parseTrustBundle(`${pki.ca.certificatePem}${text}`)),
      ),
      { numRuns: 300 },
    );
  });
});
