/** Certificates for tests: a CA with a loopback server leaf and a client leaf, minted for real. */
import { createCertificateAuthority, type IssuedCertificate, issueLeafCertificate } from "../mint.ts";

export interface TestPki {
  readonly ca: IssuedCertificate;
  /** SANs localhost and 127.0.0.1, EKU serverAuth. */
  readonly server: IssuedCertificate;
  /** CN "test-client", EKU clientAuth. */
  readonly client: IssuedCertificate;
}

export async function mintTestPki(name = "test", durationMs = 3_600_000): Promise<TestPki> {
  const ca = await createCertificateAuthority({
    commonName: `${name}-ca`,
    keySize: 2048,
    durationMs: 10 * durationMs,
  });
  const [server, client] = await Promise.all([
    issueLeafCertificate(ca, {
      usage: "server",
      commonName: `${name}-server`,
      dnsNames: ["localhost"],
      ipAddresses: ["127.0.0.1"],
      keySize: 2048,
      durationMs,
    }),
    issueLeafCertificate(ca, {
      usage: "client",
      commonName: `${name}-client`,
      dnsNames: [],
      keySize: 2048,
      durationMs,
    }),
  ]);
  return { ca, server, client };
}
