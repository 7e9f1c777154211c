/**
 * `pingpong demo` while there is no operator yet: a ponger and a pinger on loopback over mutual TLS,
 * with a CA and leaves minted for the occasion, printing ping health until interrupted.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Logger } from "../lib/logger.ts";
import { createCertificateAuthority, issueLeafCertificate } from "../lib/pki/mint.ts";
import { startPinger } from "./pinger/pinger.ts";
import { startPonger } from "./ponger/ponger.ts";

// eslint-disable-next-line max-lines-per-function -- a script: start, wait, print, in the order a user sees it
export async function runLocalDemo(logger: Logger): Promise<{ stop(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "pingpong-demo-"));
  const hour = 3_600_000;
  const ca = await createCertificateAuthority({
    commonName: "demo-ca",
    keySize: 2048,
    durationMs: 24 * hour,
  });
  const [server, client] = await Promise.all([
    issueLeafCertificate(ca, {
      usage: "server",
      commonName: "demo-ponger",
      dnsNames: ["localhost"],
      ipAddresses: ["127.0.0.1"],
      keySize: 2048,
      durationMs: hour,
    }),
    issueLeafCertificate(ca, {
      usage: "client",
      commonName: "demo-pinger",
      dnsNames: [],
      keySize: 2048,
      durationMs: hour,
    }),
  ]);
  const file = (name: string) => join(dir, name);
  await Promise.all([
    writeFile(file("ca.crt"), ca.certificatePem),
    writeFile(file("ponger.crt"), server.certificatePem),
    writeFile(file("ponger.key"), server.privateKeyPem, { mode: 0o600 }),
    writeFile(file("pinger.crt"), client.certificatePem),
    writeFile(file("pinger.key"), client.privateKeyPem, { mode: 0o600 }),
  ]);

  const ponger = await startPonger(
    {
      service: {
        address: "127.0.0.1",
        port: 0,
        protocol: "https",
        tlsCertificate: file("ponger.crt"),
        tlsPrivateKey: file("ponger.key"),
        clientCA: file("ca.crt"),
      },
      metrics: { address: "127.0.0.1", port: 0 },
      podName: "demo-ponger",
    },
    logger.child({ component: "ponger" }),
  );
  const pinger = await startPinger(
    {
      ponger: {
        url: ponger.pingUrl,
        acceptCert: file("ca.crt"),
        clientCertificate: file("pinger.crt"),
        clientPrivateKey: file("pinger.key"),
      },
      intervalMs: 1_000,
      timeoutMs: 2_000,
      startupGraceMs: 30_000,
      metrics: { address: "127.0.0.1", port: 0 },
      podName: "demo-pinger",
    },
    logger.child({ component: "pinger" }),
  );
  process.stdout.write(
    `\nponger ${ponger.pingUrl} (mutual TLS), metrics ${ponger.probes.url}/metrics\n` +
      `pinger status ${pinger.probes.url}/status\nCertificates in ${dir}. Ctrl-C stops.\n\n`,
  );
  const report = setInterval(() => {
    const s = pinger.status();
    process.stdout.write(
      `pings sent ${s.sent}  succeeded ${s.succeeded}  failed ${s.failed}  p50 ${s.latencyP50Ms ?? "-"} ms  p99 ${s.latencyP99Ms ?? "-"} ms\n`,
    );
  }, 5_000);
  return {
    stop: async () => {
      clearInterval(report);
      await pinger.close();
      await ponger.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
