import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, createServer, type TLSSocket } from "node:tls";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PkiError } from "./errors.ts";
import { inspectCertificate, isSignedBy, keyMatchesCertificate, keySizeOf } from "./inspect.ts";
import {
  clockSkewAllowanceMs,
  createCertificateAuthority,
  type IssuedCertificate,
  issueLeafCertificate,
  keySizes,
} from "./mint.ts";
import { mintTestPki, type TestPki } from "./testing/fixtures.ts";

const run = promisify(execFile);

async function openssl(...args: string[]): Promise<{ ok: boolean; output: string }> {
  try {
    const { stdout, stderr } = await run("openssl", args);
    return { ok: true, output: stdout + stderr };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string };
    return { ok: false, output: `${e.stdout ?? ""}${e.stderr ?? ""}` };
  }
}

let dir: string;
let pki: TestPki;
let other: TestPki;
const file = (name: string) => join(dir, name);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "pki-test-"));
  [pki, other] = await Promise.all([mintTestPki("main"), mintTestPki("other")]);
  const files: Record<string, string> = {
    "ca.crt": pki.ca.certificatePem,
    "ca.key": pki.ca.privateKeyPem,
    "server.crt": pki.server.certificatePem,
    "server.key": pki.server.privateKeyPem,
    "client.crt": pki.client.certificatePem,
    "client.key": pki.client.privateKeyPem,
    "other-ca.crt": other.ca.certificatePem,
    "other-server.crt": other.server.certificatePem,
  };
  await Promise.all(Object.entries(files).map(([name, text]) => writeFile(file(name), text)));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("openssl cross-checks", () => {
  it("verifies both leaves against their CA", async () => {
    for (const leaf of ["server.crt", "client.crt"]) {
      const result = await openssl("verify", "-CAfile", file("ca.crt"), file(leaf));
      expect(result.output).toContain(": OK");
      expect(result.ok).toBe(true);
    }
  });

  it("rejects a leaf of another CA", async () => {
    const result = await openssl("verify", "-CAfile", file("ca.crt"), file("other-server.crt"));
    expect(result.ok).toBe(false);
    expect(result.output).toMatch(/unable to get local issuer certificate/);
  });

  it("checks the purposes: serverAuth for the server, clientAuth for the client", async () => {
    const asServer = await openssl(
      "verify",
      "-purpose",
      "sslserver",
      "-CAfile",
      file("ca.crt"),
      file("server.crt"),
    );
    expect(asServer.ok).toBe(true);
    const clientAsServer = await openssl(
      "verify",
      "-purpose",
      "sslserver",
      "-CAfile",
      file("ca.crt"),
      file("client.crt"),
    );
    expect(clientAsServer.ok).toBe(false);
    const asClient = await openssl(
      "verify",
      "-purpose",
      "sslclient",
      "-CAfile",
      file("ca.crt"),
      file("client.crt"),
    );
    expect(asClient.ok).toBe(true);
  });

  it("shows the CA extensions", async () => {
    const { output } = await openssl("x509", "-in", file("ca.crt"), "-noout", "-text");
    expect(output).toMatch(/X509v3 Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
    expect(output).toMatch(/X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign/);
    expect(output).toMatch(/X509v3 Subject Key Identifier:/);
    expect(output).toMatch(/Signature Algorithm: sha256WithRSAEncryption/);
    expect(output).toMatch(/Public-Key: \(2048 bit\)/);
    expect(output).toMatch(/Subject: CN ?= ?main-ca/);
  });

  it("shows the server leaf extensions", async () => {
    const { output } = await openssl("x509", "-in", file("server.crt"), "-noout", "-text");
    expect(output).toMatch(/X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment/);
    expect(output).toMatch(/X509v3 Extended Key Usage:\s+TLS Web Server Authentication\n/);
    expect(output).toMatch(/X509v3 Subject Alternative Name:\s+DNS:localhost, IP Address:127.0.0.1/);
    expect(output).toMatch(/X509v3 Authority Key Identifier:/);
    expect(output).toMatch(/X509v3 Basic Constraints: critical\s+CA:FALSE/);
  });

  it("shows the client leaf extensions", async () => {
    const { output } = await openssl("x509", "-in", file("client.crt"), "-noout", "-text");
    expect(output).toMatch(/X509v3 Extended Key Usage:\s+TLS Web Client Authentication\n/);
    expect(output).toMatch(/Subject: CN ?= ?main-client/);
    expect(output).not.toMatch(/Subject Alternative Name/);
  });

  it("links the leaf's authority key id to the CA's subject key id", async () => {
    const ca = (await openssl("x509", "-in", file("ca.crt"), "-noout", "-ext", "subjectKeyIdentifier"))
      .output;
    const leaf = (
      await openssl("x509", "-in", file("server.crt"), "-noout", "-ext", "authorityKeyIdentifier")
    ).output;
    const caId = /([0-9A-F]{2}(?::[0-9A-F]{2}){19})/.exec(ca)?.[1];
    expect(caId).toBeDefined();
    expect(leaf).toContain(caId);
  });

  it("produces keys that pass openssl's consistency check", async () => {
    for (const key of ["ca.key", "server.key", "client.key"]) {
      const result = await openssl("rsa", "-in", file(key), "-check", "-noout");
      expect(result.output).toContain("RSA key ok");
    }
  });

  it("uses a positive serial of at least 64 bits", async () => {
    const { output } = await openssl("x509", "-in", file("server.crt"), "-noout", "-serial");
    const hex = /serial=([0-9A-F]+)/.exec(output)?.[1] ?? "";
    expect(hex.length * 4).toBeGreaterThanOrEqual(64);
    expect(Number.parseInt(hex.slice(0, 2), 16)).toBeLessThan(0x80);
    expect(hex.toLowerCase()).toBe(inspectCertificate(pki.server.certificatePem).serial);
  });
});

describe("mutual TLS handshake with minted certificates", () => {
  /** What the server saw: the data it sent back on an accepted connection, or why it refused. */
  async function handshake(
    client: IssuedCertificate | undefined,
  ): Promise<{ received: string; refusal?: string }> {
    const server = createServer({
      key: pki.server.privateKeyPem,
      cert: pki.server.certificatePem,
      ca: pki.ca.certificatePem,
      requestCert: true,
      rejectUnauthorized: true,
    });
    let refusal: string | undefined;
    server.on("secureConnection", (socket: TLSSocket) => socket.end("hello"));
    server.on(
      "tlsClientError",
      (error: Error & { code?: string }) => (refusal = error.code ?? error.message),
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    const port = typeof address === "object" && address ? address.port : 0;
    try {
      const received = await new Promise<string>((resolve) => {
        const socket = connect({
          host: "127.0.0.1",
          port,
          servername: "localhost",
          ca: pki.ca.certificatePem,
          ...(client ? { cert: client.certificatePem, key: client.privateKeyPem } : {}),
        });
        let data = "";
        socket.on("data", (chunk: Buffer) => (data += chunk.toString()));
        socket.on("close", () => {
          resolve(data);
        });
        socket.on("error", () => {
          resolve(data);
        });
      });
      return refusal === undefined ? { received } : { received, refusal };
    } finally {
      server.close();
    }
  }

  it("succeeds with a client certificate from the same CA", async () => {
    expect(await handshake(pki.client)).toEqual({ received: "hello" });
  });

  it("fails with a client certificate from another CA", async () => {
    const result = await handshake(other.client);
    // Never accepted. The code the server reports depends on who closes first under TLS 1.3.
    expect(result.received).toBe("");
    expect(result.refusal).toBeDefined();
  });

  it("fails without a client certificate", async () => {
    const result = await handshake(undefined);
    expect(result.received).toBe("");
    expect(result.refusal).toMatch(/PEER_DID_NOT_RETURN_A_CERTIFICATE|certificate required/i);
  });
});

describe("minting", () => {
  it.each(keySizes)("mints a %d-bit CA and leaf", async (keySize) => {
    const ca = await createCertificateAuthority({ commonName: "sized-ca", keySize, durationMs: 3_600_000 });
    const leaf = await issueLeafCertificate(ca, {
      usage: "client",
      commonName: "sized",
      dnsNames: [],
      keySize,
      durationMs: 60_000,
    });
    expect(inspectCertificate(ca.certificatePem).keySize).toBe(keySize);
    expect(keySizeOf(leaf.privateKeyPem)).toBe(keySize);
    expect(keyMatchesCertificate(leaf.privateKeyPem, leaf.certificatePem)).toBe(true);
    expect(isSignedBy(leaf.certificatePem, ca.certificatePem)).toBe(true);
  });

  it("backdates notBefore and sets notAfter from the duration", async () => {
    const now = new Date("2026-06-01T12:00:00Z");
    const leaf = await issueLeafCertificate(
      pki.ca,
      { usage: "client", commonName: "timed", dnsNames: [], keySize: 2048, durationMs: 3_600_000 },
      now,
    );
    const info = inspectCertificate(leaf.certificatePem);
    expect(info.notBefore.getTime()).toBe(now.getTime() - clockSkewAllowanceMs);
    expect(info.notAfter.getTime()).toBe(now.getTime() + 3_600_000);
  });

  it("never issues a leaf that outlives its CA", async () => {
    const ca = await createCertificateAuthority({
      commonName: "short-ca",
      keySize: 2048,
      durationMs: 60_000,
    });
    const leaf = await issueLeafCertificate(ca, {
      usage: "client",
      commonName: "long",
      dnsNames: [],
      keySize: 2048,
      durationMs: 86_400_000,
    });
    expect(inspectCertificate(leaf.certificatePem).notAfter).toEqual(
      inspectCertificate(ca.certificatePem).notAfter,
    );
  });

  it("refuses to issue from an expired CA, saying so", async () => {
    const past = new Date(Date.now() - 7_200_000);
    const ca = await createCertificateAuthority(
      { commonName: "old-ca", keySize: 2048, durationMs: 60_000 },
      past,
    );
    await expect(
      issueLeafCertificate(ca, {
        usage: "client",
        commonName: "x",
        dnsNames: [],
        keySize: 2048,
        durationMs: 60_000,
      }),
    ).rejects.toThrow(/expired at .*rotate the CA first/);
  });

  it.each([
    [{ keySize: 1024 }, /key size 1024 is not supported: use one of 2048, 3072, 4096/],
    [{ durationMs: 0 }, /must be a positive number/],
    [{ commonName: "" }, /common name "" must be 1 to 64 characters/],
    [{ dnsNames: [] }, /needs at least one DNS name or IP address/],
    [{ dnsNames: ["Not_A_Name"] }, /"Not_A_Name" is not a valid DNS name/],
    [{ ipAddresses: ["300.1.1.1"] }, /"300.1.1.1" is not an IP address/],
  ])("rejects a bad leaf request %j with a typed error", async (override, message) => {
    const request = {
      usage: "server" as const,
      commonName: "bad",
      dnsNames: ["ok.example"],
      keySize: 2048 as const,
      durationMs: 60_000,
      ...override,
    } as Parameters<typeof issueLeafCertificate>[1];
    const attempt = issueLeafCertificate(pki.ca, request);
    await expect(attempt).rejects.toBeInstanceOf(PkiError);
    await expect(attempt).rejects.toThrow(message);
  });

  it("refuses a CA whose key does not match its certificate", async () => {
    const mixed = { certificatePem: pki.ca.certificatePem, privateKeyPem: other.ca.privateKeyPem };
    await expect(
      issueLeafCertificate(mixed, {
        usage: "client",
        commonName: "x",
        dnsNames: [],
        keySize: 2048,
        durationMs: 1,
      }),
    ).rejects.toThrow(/does not belong to the CA certificate/);
  });
});
