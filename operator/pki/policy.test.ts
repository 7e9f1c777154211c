import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { inspectCertificate } from "../../lib/pki/inspect.ts";
import {
  createCertificateAuthority,
  type IssuedCertificate,
  issueLeafCertificate,
  type LeafRequest,
} from "../../lib/pki/mint.ts";
import {
  type CertificateAuthoritySpec,
  decideCertificateAuthority,
  decideLeaf,
  type LeafSpec,
  type ReissueReason,
  renewalTimeOf,
  type StoredCertificate,
} from "./policy.ts";

const hour = 3_600_000;
/** The fake clock: every certificate here is minted at t0 and judged at t0 + some offset. */
const t0 = new Date("2026-03-01T00:00:00Z");
const at = (offsetMs: number) => new Date(t0.getTime() + offsetMs);

const serverSpec: LeafSpec = {
  usage: "server",
  commonName: "demo-ponger",
  dnsNames: ["demo-ponger", "demo-ponger.default.svc"],
  keySize: 2048,
  durationMs: 24 * hour,
  renewBeforeMs: 8 * hour,
  rotateToken: "",
};
const caSpec: CertificateAuthoritySpec = {
  commonName: "demo-ca",
  keySize: 2048,
  durationMs: 90 * 24 * hour,
  renewBeforeMs: 30 * 24 * hour,
  rotateToken: "",
};

let ca: IssuedCertificate;
let otherCa: IssuedCertificate;
let shortCa: IssuedCertificate;
let server: IssuedCertificate;
let client: IssuedCertificate;
let otherServer: IssuedCertificate;
let server3072: IssuedCertificate;
let cappedServer: IssuedCertificate;

const asRequest = (spec: LeafSpec, overrides: Partial<LeafRequest> = {}): LeafRequest => ({
  usage: spec.usage,
  commonName: spec.commonName,
  dnsNames: spec.dnsNames,
  keySize: spec.keySize,
  durationMs: spec.durationMs,
  ...overrides,
});

beforeAll(async () => {
  [ca, otherCa, shortCa] = await Promise.all([
    createCertificateAuthority(caSpec, t0),
    createCertificateAuthority(caSpec, t0),
    createCertificateAuthority({ ...caSpec, durationMs: 12 * hour }, t0),
  ]);
  [server, client, otherServer, server3072, cappedServer] = await Promise.all([
    issueLeafCertificate(ca, asRequest(serverSpec), t0),
    issueLeafCertificate(ca, asRequest(serverSpec, { usage: "client" }), t0),
    issueLeafCertificate(otherCa, asRequest(serverSpec), t0),
    issueLeafCertificate(ca, asRequest(serverSpec, { keySize: 3072 }), t0),
    issueLeafCertificate(shortCa, asRequest(serverSpec), t0),
  ]);
});

const stored = (cert: IssuedCertificate, extra: Partial<StoredCertificate> = {}): StoredCertificate => ({
  certificatePem: cert.certificatePem,
  privateKeyPem: cert.privateKeyPem,
  rotateToken: "",
  ...extra,
});

interface LeafCase {
  name: string;
  reason: ReissueReason;
  message: RegExp;
  input: () => Parameters<typeof decideLeaf>[0];
}

const leaf = (overrides: Partial<Parameters<typeof decideLeaf>[0]> = {}) => ({
  spec: serverSpec,
  caCertificatePem: ca.certificatePem,
  stored: stored(server),
  now: at(hour),
  ...overrides,
});

describe("decideLeaf", () => {
  const cases: LeafCase[] = [
    {
      name: "no Secret yet",
      reason: "Missing",
      message: /server certificate is missing/,
      input: () => leaf({ stored: undefined }),
    },
    {
      name: "a Secret without its key",
      reason: "Missing",
      message: /server private key is missing/,
      input: () => leaf({ stored: { certificatePem: server.certificatePem } }),
    },
    {
      name: "garbage in tls.crt",
      reason: "Unparsable",
      message: /server certificate: .*not valid PEM/,
      input: () => leaf({ stored: stored(server, { certificatePem: "garbage" }) }),
    },
    {
      name: "a certificate in tls.key",
      reason: "Unparsable",
      message: /server private key: expected a private key/,
      input: () => leaf({ stored: stored(server, { privateKeyPem: server.certificatePem }) }),
    },
    {
      name: "someone else's key",
      reason: "KeyMismatch",
      message: /private key does not match its certificate/,
      input: () => leaf({ stored: stored(server, { privateKeyPem: client.privateKeyPem }) }),
    },
    {
      name: "a leaf of another CA",
      reason: "NotSignedByCA",
      message: /not signed by the current CA/,
      input: () => leaf({ stored: stored(otherServer) }),
    },
    {
      name: "a CA that does not parse",
      reason: "NotSignedByCA",
      message: /not signed by the current CA/,
      input: () => leaf({ caCertificatePem: "garbage" }),
    },
    {
      name: "a new rotate token",
      reason: "RotateRequested",
      message: /rotate changed to "now"/,
      input: () => leaf({ spec: { ...serverSpec, rotateToken: "now" } }),
    },
    {
      name: "a client certificate where a server one is wanted",
      reason: "UsageDiffers",
      message: /\[clientAuth\], want \[serverAuth\]/,
      input: () => leaf({ stored: stored(client) }),
    },
    {
      name: "a renamed subject",
      reason: "SubjectDiffers",
      message: /common name is "demo-ponger", want "other"/,
      input: () => leaf({ spec: { ...serverSpec, commonName: "other" } }),
    },
    {
      name: "a new DNS name",
      reason: "SANsDiffer",
      message: /want \[demo-ponger, demo-ponger.default.svc, extra\]/,
      input: () => leaf({ spec: { ...serverSpec, dnsNames: [...serverSpec.dnsNames, "extra"] } }),
    },
    {
      name: "a new key size",
      reason: "KeySizeDiffers",
      message: /key size is 3072 bits, want 2048/,
      input: () => leaf({ stored: stored(server3072) }),
    },
    {
      name: "a new certDuration",
      reason: "DurationChanged",
      message: /duration is 24h, want 48h/,
      input: () => leaf({ spec: { ...serverSpec, durationMs: 48 * hour } }),
    },
    {
      name: "the clock inside renewBefore",
      reason: "RenewalDue",
      message: /renewal was due at 2026-03-01T16:00:00.000Z/,
      input: () => leaf({ now: at(16 * hour) }),
    },
    {
      name: "an expired certificate",
      reason: "RenewalDue",
      message: /expires at 2026-03-02T00:00:00.000Z/,
      input: () => leaf({ now: at(30 * hour) }),
    },
    {
      name: "a leaf cut short by its CA, inside its renewal window",
      reason: "CANearExpiry",
      message: /cannot outlive its CA/,
      input: () =>
        leaf({ caCertificatePem: shortCa.certificatePem, stored: stored(cappedServer), now: at(10 * hour) }),
    },
  ];

  it.each(cases)("reissues for $name: $reason", ({ input, reason, message }) => {
    const decision = decideLeaf(input());
    expect(decision).toMatchObject({ action: "reissue", reason });
    expect(decision.action === "reissue" && decision.message).toMatch(message);
  });

  it("keeps a good certificate and says when to renew it", () => {
    const decision = decideLeaf(leaf());
    expect(decision).toMatchObject({ action: "keep", renewalTime: at(16 * hour) });
  });

  it("keeps a leaf cut short by its CA while outside the renewal window, without a duration loop", () => {
    const decision = decideLeaf(
      leaf({ caCertificatePem: shortCa.certificatePem, stored: stored(cappedServer) }),
    );
    expect(decision.action).toBe("keep");
  });

  it("checks structural problems before requested ones", () => {
    const decision = decideLeaf(
      leaf({ stored: stored(otherServer), spec: { ...serverSpec, rotateToken: "x" } }),
    );
    expect(decision).toMatchObject({ reason: "NotSignedByCA" });
  });

  it("never throws, whatever is stored", () => {
    const anyText = fc.oneof(
      fc.string(),
      fc.constantFrom(server.certificatePem, server.privateKeyPem, ca.certificatePem, client.privateKeyPem),
      fc.nat().map((n) => server.certificatePem.slice(0, n % 1200)),
    );
    fc.assert(
      fc.property(
        fc.option(anyText),
        fc.option(anyText),
        anyText,
        fc.integer(),
        (cert, key, caPem, offset) => {
          const decision = decideLeaf(
            leaf({
              stored: { certificatePem: cert ?? undefined, privateKeyPem: key ?? undefined },
              caCertificatePem: caPem,
              now: at(offset),
            }),
          );
          return decision.action === "keep" || decision.message.length > 0;
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("decideCertificateAuthority", () => {
  const input = (overrides: Partial<Parameters<typeof decideCertificateAuthority>[0]> = {}) => ({
    spec: caSpec,
    stored: stored(ca),
    now: at(hour),
    ...overrides,
  });

  it.each<[string, ReissueReason, () => Parameters<typeof decideCertificateAuthority>[0]]>([
    ["no Secret", "Missing", () => input({ stored: undefined })],
    ["garbage", "Unparsable", () => input({ stored: stored(ca, { certificatePem: "\u0000\u0001" }) })],
    [
      "a key of another CA",
      "KeyMismatch",
      () => input({ stored: stored(ca, { privateKeyPem: otherCa.privateKeyPem }) }),
    ],
    ["a leaf stored as the CA", "NotACA", () => input({ stored: stored(server) })],
    ["a new rotateCA token", "RotateRequested", () => input({ spec: { ...caSpec, rotateToken: "2" } })],
    ["a CA inside its renewal window", "CANearExpiry", () => input({ now: at(61 * 24 * hour) })],
  ])("reissues for %s: %s", (_, reason, make) => {
    expect(decideCertificateAuthority(make())).toMatchObject({ action: "reissue", reason });
  });

  it("keeps a good CA until a third of its life is left", () => {
    const decision = decideCertificateAuthority(input());
    expect(decision).toMatchObject({ action: "keep", renewalTime: at(60 * 24 * hour) });
  });
});

describe("renewalTimeOf", () => {
  it("falls back to two thirds of the lifetime when renewBefore is not shorter than it", () => {
    const info = inspectCertificate(server.certificatePem);
    const lifetime = info.notAfter.getTime() - info.notBefore.getTime();
    expect(renewalTimeOf(info, 48 * hour).getTime()).toBe(info.notAfter.getTime() - lifetime / 3);
    expect(renewalTimeOf(info, 0).getTime()).toBe(info.notAfter.getTime() - lifetime / 3);
  });
});
