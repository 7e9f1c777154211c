import crypto, { X509Certificate } from "node:crypto";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../lib/logger.ts";
import { mintTestPki, type TestPki } from "../lib/pki/testing/fixtures.ts";
import { KubeletVolume } from "./testing/kubelet-volume.ts";
import type { TlsMaterial } from "./tls-files.ts";
import { TlsReloader } from "./tls-reloader.ts";

let first: TestPki;
let second: TestPki;
const stopped: (() => void)[] = [];

beforeAll(async () => {
  [first, second] = await Promise.all([mintTestPki("first"), mintTestPki("second")]);
});
afterEach(() => {
  for (const stop of stopped.splice(0)) stop();
});

const filesOf = (pki: TestPki) => ({
  "tls.crt": pki.server.certificatePem,
  "tls.key": pki.server.privateKeyPem,
  "ca.crt": pki.ca.certificatePem,
});
const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;

async function setUp() {
  const volume = await KubeletVolume.create(filesOf(first));
  const applied: TlsMaterial[] = [];
  const logs: Record<string, unknown>[] = [];
  const logger = createLogger("reloader-test", {
    write: (line: string) => logs.push(JSON.parse(line) as Record<string, unknown>),
  });
  const reloader = new TlsReloader({
    paths: {
      certificate: volume.path("tls.crt"),
      privateKey: volume.path("tls.key"),
      trustBundle: volume.path("ca.crt"),
    },
    logger,
    apply: (m) => applied.push(m),
    pollIntervalMs: 60_000,
    debounceMs: 10,
  });
  const initial = reloader.start();
  stopped.push(() => {
    reloader.stop();
    void volume.remove();
  });
  return { volume, applied, logs, reloader, initial };
}

async function eventually(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("TlsReloader", () => {
  it("loads the files and reports what it loaded", async () => {
    const { initial } = await setUp();
    expect(initial.certificate?.sha256Fingerprint).toBe(fingerprint(first.server.certificatePem));
    expect(initial.trustBundle.map((c) => c.sha256Fingerprint)).toEqual([
      fingerprint(first.ca.certificatePem),
    ]);
  });

  it("does not reload files that have not changed", async () => {
    const { applied, reloader, logs } = await setUp();
    reloader.check();
    reloader.check();
    expect(applied).toHaveLength(0);
    expect(reloader.status).toEqual({ reloads: 0, lastError: null });
    expect(logs.filter((l) => l.msg === "Reloaded TLS files")).toHaveLength(0);
  });

  it("applies a kubelet-style ..data swap by itself, from the folder watch", async () => {
    const { volume, applied, reloader } = await setUp();
    await volume.write(filesOf(second));
    await eventually(() => applied.length === 1);
    expect(applied[0]?.certificate?.sha256Fingerprint).toBe(fingerprint(second.server.certificatePem));
    expect(reloader.current?.trustBundle[0]?.sha256Fingerprint).toBe(fingerprint(second.ca.certificatePem));
    expect(reloader.status).toEqual({ reloads: 1, lastError: null });
  });

  it("applies old + new CA bundles", async () => {
    const { volume, applied } = await setUp();
    await volume.write({ ...filesOf(first), "ca.crt": first.ca.certificatePem + second.ca.certificatePem });
    await eventually(() => applied.length === 1);
    expect(applied[0]?.trustBundle).toHaveLength(2);
  });

  it.each([
    [
      "an unparsable certificate",
      { "tls.crt": "-----BEGIN CERTIFICATE-----\nnonsense\n-----END CERTIFICATE-----\n" },
      "tls.crt",
      /does not parse/,
    ],
    ["a certificate file with no certificate", { "tls.crt": "hello" }, "tls.crt", /holds no PEM certificate/],
    ["a key that does not match", { "tls.key": "KEY" }, "tls.key", /not a usable PEM private key/],
    ["a key of another certificate", { "tls.key": "SECOND" }, "tls.key", /does not match the certificate/],
    ["an empty trust bundle", { "ca.crt": "" }, "ca.crt", /holds no PEM certificate/],
    [
      "a certificate followed by a lone BEGIN line (a half-written file)",
      { "tls.crt": "SECOND_CERT-----BEGIN CERTIFICATE-----\nMIIB\n" },
      "tls.crt",
      /incomplete PEM block: the BEGIN CERTIFICATE line \d+ has no END line/,
    ],
    [
      "500 KB of BEGIN lines",
      { "ca.crt": "-----BEGIN CERTIFICATE-----\n".repeat(18_000) },
      "ca.crt",
      /incomplete PEM block: the BEGIN CERTIFICATE line 1 has no END line/,
    ],
    ["a file over 1 MiB", { "ca.crt": "x".repeat(1024 * 1024 + 1) }, "ca.crt", /at most 1048576/],
    [
      "a passphrase-protected key",
      { "tls.key": "ENCRYPTED_KEY" },
      "tls.key",
      /passphrase-protected \(encrypted\) private key/,
    ],
  ])("keeps the working files when given %s, naming the file", async (_, change, file, message) => {
    const { volume, applied, logs, reloader, initial } = await setUp();
    const substitute = (value: string) =>
      value === "SECOND"
        ? second.server.privateKeyPem
        : value === "ENCRYPTED_KEY"
          ? crypto
              .createPrivateKey(first.server.privateKeyPem)
              .export({ type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase: "secret" })
              .toString()
          : value.replace("SECOND_CERT", second.server.certificatePem);
    const replacement = Object.fromEntries(Object.entries(change).map(([k, v]) => [k, substitute(v)]));
    await volume.write({ ...filesOf(first), ...replacement });
    await eventually(() => logs.some((l) => l.level === "error"));
    expect(applied).toHaveLength(0);
    expect(reloader.current).toBe(initial);
    const error = logs.find((l) => l.level === "error");
    expect(error?.file).toBe(volume.path(file));
    expect(String(error?.error)).toMatch(message);
    expect(reloader.status.lastError).toMatch(message);
    expect(JSON.stringify(logs)).not.toContain("PRIVATE KEY");

    // The same bad contents are not reported again...
    reloader.check();
    expect(logs.filter((l) => l.level === "error")).toHaveLength(1);
    // ...and the next good change is applied.
    await volume.write(filesOf(second));
    await eventually(() => applied.length === 1);
    expect(reloader.status.lastError).toBeNull();
  });
});
