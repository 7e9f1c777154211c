import { afterAll, describe, expect, it } from "vitest";
import { eventually } from "../../controlplane/testing.ts";
import { PkiError } from "../../lib/pki/errors.ts";
import { inspectCertificate, isSignedBy, keyMatchesCertificate } from "../../lib/pki/inspect.ts";
import { WorkerPoolMinter } from "./minter.ts";

const minter = new WorkerPoolMinter(2);
afterAll(() => minter.close());

describe("WorkerPoolMinter", () => {
  it("mints a CA and many leaves in worker threads, each valid and distinct", async () => {
    const ca = await minter.createCertificateAuthority({
      commonName: "pool-ca",
      keySize: 2048,
      durationMs: 3_600_000,
    });
    const leaves = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        minter.issueLeafCertificate(ca, {
          usage: "client",
          commonName: `client-${i}`,
          dnsNames: [],
          keySize: 2048,
          durationMs: 60_000,
        }),
      ),
    );
    const serials = new Set(leaves.map((l) => inspectCertificate(l.certificatePem).serial));
    expect(serials.size).toBe(6);
    for (const [i, leaf] of leaves.entries()) {
      expect(inspectCertificate(leaf.certificatePem).subjectCommonName).toBe(`client-${i}`);
      expect(isSignedBy(leaf.certificatePem, ca.certificatePem)).toBe(true);
      expect(keyMatchesCertificate(leaf.privateKeyPem, leaf.certificatePem)).toBe(true);
    }
  });

  it("passes the clock to the worker", async () => {
    const now = new Date("2026-01-01T00:00:00Z");
    const ca = await minter.createCertificateAuthority(
      { commonName: "dated", keySize: 2048, durationMs: 1000 },
      now,
    );
    expect(inspectCertificate(ca.certificatePem).notAfter).toEqual(new Date("2026-01-01T00:00:01Z"));
  });

  it("brings typed errors back from the worker", async () => {
    const attempt = minter.issueLeafCertificate(
      { certificatePem: "garbage", privateKeyPem: "garbage" },
      { usage: "client", commonName: "x", dnsNames: [], keySize: 2048, durationMs: 1000 },
    );
    await expect(attempt).rejects.toBeInstanceOf(PkiError);
    await expect(attempt).rejects.toMatchObject({ code: "InvalidPem" });
  });

  it("lets idle workers exit and starts new ones on demand", async () => {
    const pool = new WorkerPoolMinter(2, 200);
    const request = { commonName: "idle", keySize: 2048 as const, durationMs: 1000 };
    await Promise.all([pool.createCertificateAuthority(request), pool.createCertificateAuthority(request)]);
    expect(pool.liveWorkers).toBe(2);
    // Idle for 200 ms, each worker exits by itself.
    await eventually("idle workers exited", () => Promise.resolve(pool.liveWorkers === 0 ? true : undefined));
    const again = await pool.createCertificateAuthority(request);
    expect(inspectCertificate(again.certificatePem).subjectCommonName).toBe("idle");
    await pool.close();
  });

  it("refuses work after close", async () => {
    const closed = new WorkerPoolMinter(1);
    await closed.close();
    await expect(
      closed.createCertificateAuthority({ commonName: "late", keySize: 2048, durationMs: 1000 }),
    ).rejects.toThrow(/closed/);
  });
});
