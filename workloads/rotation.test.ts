/**
 * The pinger and ponger as real processes on loopback, with certificates rotated underneath them the
 * way the operator will do it (trust both CAs, swap leaves, drop the old CA), each step written the
 * way the kubelet writes a Secret volume. Pinging every 50 ms throughout, not one ping may fail.
 */
import { X509Certificate } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintTestPki, type TestPki } from "../lib/pki/testing/fixtures.ts";
import { KubeletVolume } from "./testing/kubelet-volume.ts";
import { CliProcess } from "./testing/processes.ts";
import { fetchOnce, metricValue } from "./testing/tls-client.ts";

interface Summary {
  sha256Fingerprint: string;
}
interface WorkloadStatus {
  tls: { certificate: Summary | null; trustBundle: Summary[]; lastError: string | null };
}
interface PingerStatus extends WorkloadStatus {
  sent: number;
  succeeded: number;
  failed: number;
  lastFailure: { message: string } | null;
}

const fp = (pem: string) => new X509Certificate(pem).fingerprint256;

let oldPki: TestPki;
let newPki: TestPki;
let serverVolume: KubeletVolume;
let clientVolume: KubeletVolume;
let configDir: string;
let ponger: CliProcess;
let pinger: CliProcess;
let pingUrl: string;
let pongerProbes: string;
let pingerProbes: string;

async function json<T>(url: string): Promise<T> {
  return (await (await fetch(url)).json()) as T;
}

async function waitFor<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  what: string,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const pingerStatus = () => json<PingerStatus>(`${pingerProbes}/status`);
const pongerStatus = () => json<WorkloadStatus>(`${pongerProbes}/status`);

/** Waits until both programs report exactly this certificate and bundle loaded. */
async function bothLoaded(server: string, client: string, bundle: string[]): Promise<void> {
  const matches = (s: WorkloadStatus, leaf: string) =>
    s.tls.certificate?.sha256Fingerprint === fp(leaf) &&
    JSON.stringify(s.tls.trustBundle.map((c) => c.sha256Fingerprint)) === JSON.stringify(bundle.map(fp));
  await waitFor(pongerStatus, (s) => matches(s, server), "the ponger to load the new files");
  await waitFor(pingerStatus, (s) => matches(s, client), "the pinger to load the new files");
}

/**
 * One rotation step, written kubelet-style to both volumes: the leaves of `leaves` and `bundle` as
 * ca.crt. Resolves once both programs report exactly that material loaded.
 */
async function rotationStep(leaves: TestPki, bundle: string[]): Promise<void> {
  await serverVolume.write({
    "tls.crt": leaves.server.certificatePem,
    "tls.key": leaves.server.privateKeyPem,
    "ca.crt": bundle.join(""),
  });
  await clientVolume.write({
    "tls.crt": leaves.client.certificatePem,
    "tls.key": leaves.client.privateKeyPem,
    "ca.crt": bundle.join(""),
  });
  await bothLoaded(leaves.server.certificatePem, leaves.client.certificatePem, bundle);
}

/** Lets at least `count` more pings succeed, so each step is exercised under load. */
async function morePongs(count: number): Promise<void> {
  const before = (await pingerStatus()).succeeded;
  await waitFor(pingerStatus, (s) => s.succeeded >= before + count, `${count} more pongs`);
}

beforeAll(async () => {
  [oldPki, newPki] = await Promise.all([mintTestPki("old"), mintTestPki("new")]);
  serverVolume = await KubeletVolume.create({
    "tls.crt": oldPki.server.certificatePem,
    "tls.key": oldPki.server.privateKeyPem,
    "ca.crt": oldPki.ca.certificatePem,
  });
  clientVolume = await KubeletVolume.create({
    "tls.crt": oldPki.client.certificatePem,
    "tls.key": oldPki.client.privateKeyPem,
    "ca.crt": oldPki.ca.certificatePem,
  });
  configDir = await mkdtemp(join(tmpdir(), "rotation-config-"));
  await writeFile(
    join(configDir, "ponger.yaml"),
    `service:
  address: 127.0.0.1
  port: 0
  protocol: https
  tlsCertificate: ${serverVolume.path("tls.crt")}
  tlsPrivateKey: ${serverVolume.path("tls.key")}
  clientCA: ${serverVolume.path("ca.crt")}
metrics:
  address: 127.0.0.1
  port: 0
`,
  );
  ponger = new CliProcess(["ponger", "--config", join(configDir, "ponger.yaml")], {
    POD_NAME: "rotation-ponger",
  });
  pingUrl = await ponger.logged("Ponger listening", "url");
  pongerProbes = await ponger.logged("Metrics and probes listening", "url");

  await writeFile(
    join(configDir, "pinger.yaml"),
    `ponger:
  url: ${pingUrl}
  acceptCert: ${clientVolume.path("ca.crt")}
  clientCertificate: ${clientVolume.path("tls.crt")}
  clientPrivateKey: ${clientVolume.path("tls.key")}
interval: 50ms
timeout: 2s
metrics:
  address: 127.0.0.1
  port: 0
`,
  );
  pinger = new CliProcess(["pinger", "--config", join(configDir, "pinger.yaml")], {
    POD_NAME: "rotation-pinger",
  });
  pingerProbes = await pinger.logged("Metrics and probes listening", "url");
});

afterAll(async () => {
  await Promise.all([pinger.stop("SIGKILL"), ponger.stop("SIGKILL")]);
  await Promise.all([
    serverVolume.remove(),
    clientVolume.remove(),
    rm(configDir, { recursive: true, force: true }),
  ]);
});

describe("CA rotation under load, real processes", () => {
  it("rotates CA and leaves without one failed ping, then refuses the old CA", async () => {
    await morePongs(10);

    // (1) Trust both CAs.
    const both = [oldPki.ca.certificatePem, newPki.ca.certificatePem];
    await rotationStep(oldPki, both);
    await morePongs(10);
    // (2) Leaves from the new CA.
    await rotationStep(newPki, both);
    await morePongs(10);
    // (3) Drop the old CA.
    await rotationStep(newPki, [newPki.ca.certificatePem]);
    await morePongs(20);

    const status = await pingerStatus();
    expect(status.failed, `last failure: ${JSON.stringify(status.lastFailure)}`).toBe(0);
    expect(status.succeeded).toBeGreaterThanOrEqual(50);
    const pongerMetrics = await (await fetch(`${pongerProbes}/metrics`)).text();
    expect(metricValue(pongerMetrics, "ponger_tls_handshake_failures_total")).toBe(0);

    // A new client with the new CA's certificate gets in; one with the old CA's is refused.
    const fresh = {
      ca: newPki.ca.certificatePem,
      cert: newPki.client.certificatePem,
      key: newPki.client.privateKeyPem,
    };
    expect(await fetchOnce(pingUrl, fresh)).toMatchObject({ status: 200, body: "pong" });
    const stale = {
      ca: newPki.ca.certificatePem,
      cert: oldPki.client.certificatePem,
      key: oldPki.client.privateKeyPem,
    };
    await expect(fetchOnce(pingUrl, stale)).rejects.toThrow(/other side closed/);
    await ponger.waitForLog(
      (l) =>
        l.msg === "Refused a client certificate" &&
        l.reason === "it is not signed by a CA this ponger trusts",
    );
    // And the server no longer presents the old CA's certificate to anyone who trusts only that.
    await expect(fetchOnce(pingUrl, { ...fresh, ca: oldPki.ca.certificatePem })).rejects.toThrow();
  });

  it("survives unusable files, keeps pinging, and recovers on the next good write", async () => {
    const good = {
      "tls.crt": newPki.server.certificatePem,
      "tls.key": newPki.server.privateKeyPem,
      "ca.crt": newPki.ca.certificatePem,
    };
    const failedBefore = (await pingerStatus()).failed;
    await serverVolume.write({ ...good, "tls.key": oldPki.server.privateKeyPem });
    const error = await ponger.waitForLog((l) => l.level === "error");
    expect(error.file).toBe(serverVolume.path("tls.key"));
    expect(String(error.error)).toMatch(/does not match the certificate/);
    await waitFor(pongerStatus, (s) => s.tls.lastError !== null, "the ponger to report the bad file");
    await morePongs(10);

    await clientVolume.write({ ...good, "tls.crt": "garbage" });
    const pingerError = await pinger.waitForLog((l) => l.level === "error");
    expect(pingerError.file).toBe(clientVolume.path("tls.crt"));
    await morePongs(10);
    expect((await pingerStatus()).failed).toBe(failedBefore);

    await serverVolume.write(good);
    await waitFor(pongerStatus, (s) => s.tls.lastError === null, "the ponger to recover");
    await clientVolume.write({
      "tls.crt": newPki.client.certificatePem,
      "tls.key": newPki.client.privateKeyPem,
      "ca.crt": newPki.ca.certificatePem,
    });
    await waitFor(pingerStatus, (s) => s.tls.lastError === null, "the pinger to recover");
    await morePongs(5);
    expect(ponger.child.exitCode).toBeNull();
    expect(pinger.child.exitCode).toBeNull();
    expect(ponger.logs.concat(pinger.logs).some((l) => JSON.stringify(l).includes("PRIVATE KEY"))).toBe(
      false,
    );
  });

  it("exits 0 on SIGTERM after finishing what is in flight", async () => {
    expect(await pinger.stop("SIGTERM")).toBe(0);
    expect(pinger.logs.some((l) => l.msg === "Stopped")).toBe(true);
    expect(await ponger.stop("SIGTERM")).toBe(0);
    expect(ponger.logs.some((l) => l.msg === "Stopped")).toBe(true);
  });
});
