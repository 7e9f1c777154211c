import { connect } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createLineLogger } from "../../lib/line-logger.ts";
import { mintTestPki, type TestPki } from "../../lib/pki/testing/fixtures.ts";
import { KubeletVolume } from "../testing/kubelet-volume.ts";
import { fetchOnce, metricValue } from "../testing/tls-client.ts";
import type { PongerConfig } from "./config.ts";
import { defaultPongerLimits, type Ponger, type PongerLimits, startPonger } from "./ponger.ts";

let pki: TestPki;
let other: TestPki;
let volume: KubeletVolume;
const running: Ponger[] = [];
const logs: string[] = [];
const logger = createLineLogger("ponger-test", { write: (line: string) => logs.push(line) });

beforeAll(async () => {
  [pki, other] = await Promise.all([mintTestPki("ponger"), mintTestPki("other")]);
  volume = await KubeletVolume.create({
    "tls.crt": pki.server.certificatePem,
    "tls.key": pki.server.privateKeyPem,
    "ca.crt": pki.ca.certificatePem,
  });
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.close()));
});
afterAll(() => volume.remove());

async function ponger(
  service: Partial<PongerConfig["service"]>,
  limits: PongerLimits = defaultPongerLimits,
): Promise<Ponger> {
  const config: PongerConfig = {
    service: {
      address: "127.0.0.1",
      port: 0,
      protocol: "https",
      tlsCertificate: volume.path("tls.crt"),
      tlsPrivateKey: volume.path("tls.key"),
      ...service,
    },
    metrics: { address: "127.0.0.1", port: 0 },
    podName: "ponger-0",
  };
  const started = await startPonger(config, logger, limits);
  running.push(started);
  return started;
}

const mtls = () => ({ clientCA: volume.path("ca.crt") });
const client = () => ({
  ca: pki.ca.certificatePem,
  cert: pki.client.certificatePem,
  key: pki.client.privateKeyPem,
});

describe("ponger over mutual TLS", () => {
  it("answers GET /ping with pong and names its pod", async () => {
    const p = await ponger(mtls());
    const response = await fetchOnce(p.pingUrl, client());
    expect(response).toMatchObject({ status: 200, body: "pong" });
    expect(response.headers["x-ponger-pod"]).toBe("ponger-0");
    expect(logs.join("")).toContain('"msg":"Received GET /ping"');
  });

  it("refuses a client without a certificate, saying why, and says so in its log once per peer", async () => {
    const p = await ponger(mtls());
    const before = logs.length;
    for (let i = 0; i < 5; i++) {
      const refused = await fetchOnce(p.pingUrl, { ca: pki.ca.certificatePem });
      expect(refused).toMatchObject({
        status: 403,
        body: "client certificate refused: no client certificate was presented\n",
      });
      expect(refused.headers["x-pingpong-refused"]).toBe("client-certificate");
    }
    const reported = logs.slice(before).filter((l) => l.includes("Refused a client certificate"));
    expect(reported).toHaveLength(1);
    expect(JSON.parse(reported[0] ?? "{}")).toMatchObject({ remote: "127.0.0.1", code: "NO_CERTIFICATE" });
    const metrics = await (await fetch(`${p.probes.url}/metrics`)).text();
    expect(metricValue(metrics, "ponger_tls_handshake_failures_total")).toBeGreaterThanOrEqual(1);
    expect(metricValue(metrics, "ping_requests_received_total")).toBe(0);
  });

  it("refuses a client whose certificate another CA signed", async () => {
    const p = await ponger(mtls());
    const stranger = {
      ca: pki.ca.certificatePem,
      cert: other.client.certificatePem,
      key: other.client.privateKeyPem,
    };
    expect(await fetchOnce(p.pingUrl, stranger)).toMatchObject({
      status: 403,
      body: "client certificate refused: it is not signed by a CA this ponger trusts\n",
    });
    const metrics = await (await fetch(`${p.probes.url}/metrics`)).text();
    expect(metricValue(metrics, "ping_requests_received_total")).toBe(0);
  });

  it("is not trusted by a client that trusts another CA", async () => {
    const p = await ponger(mtls());
    await expect(
      fetchOnce(p.pingUrl, {
        ca: other.ca.certificatePem,
        cert: pki.client.certificatePem,
        key: pki.client.privateKeyPem,
      }),
    ).rejects.toThrow(/certificate|self-signed|verify/i);
  });
});

describe("ponger limits", () => {
  /**
   * Opens `count` TCP connections that never start a TLS handshake; once all are connected, returns
   * for each the promise of its lifetime in milliseconds.
   */
  async function idleConnections(url: string, count: number): Promise<Promise<number>[]> {
    const { hostname, port } = new URL(url);
    const opened = await Promise.all(
      Array.from(
        { length: count },
        () =>
          new Promise<{ closed: Promise<number> }>((resolve) => {
            const started = Date.now();
            const socket = connect(Number(port), hostname);
            const closed = new Promise<number>((done) =>
              socket.on("close", () => done(Date.now() - started)),
            );
            socket.on("connect", () => resolve({ closed }));
            socket.on("error", () => undefined);
          }),
      ),
    );
    return opened.map((o) => o.closed);
  }

  it("drops connections that never finish a TLS handshake, and keeps serving", async () => {
    const p = await ponger(mtls(), { ...defaultPongerLimits, handshakeTimeoutMs: 300 });
    const lifetimes = await Promise.all(await idleConnections(p.pingUrl, 50));
    expect(Math.min(...lifetimes)).toBeGreaterThanOrEqual(250);
    expect(await fetchOnce(p.pingUrl, client())).toMatchObject({ status: 200, body: "pong" });
  });

  it("closes connections beyond its maximum as they arrive", async () => {
    const p = await ponger(mtls(), { ...defaultPongerLimits, maxConnections: 10 });
    const held = await idleConnections(p.pingUrl, 10);
    const extra = await idleConnections(p.pingUrl, 5);
    // The five over the limit are closed at once, the ten within it stay open.
    expect(Math.max(...(await Promise.all(extra)))).toBeLessThan(defaultPongerLimits.handshakeTimeoutMs);
    const stillOpen = await Promise.race([
      Promise.any(held).then(() => false),
      new Promise((r) => setTimeout(() => r(true), 300)),
    ]);
    expect(stillOpen).toBe(true);
  });
});

describe("ponger modes", () => {
  it("serves TLS without asking for a client certificate", async () => {
    const p = await ponger({});
    expect(await fetchOnce(p.pingUrl, { ca: pki.ca.certificatePem })).toMatchObject({
      status: 200,
      body: "pong",
    });
  });

  it("serves plain HTTP", async () => {
    const p = await ponger({ protocol: "http", tlsCertificate: undefined, tlsPrivateKey: undefined });
    expect(p.pingUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/ping$/);
    expect(await fetchOnce(p.pingUrl)).toMatchObject({ status: 200, body: "pong" });
    const status = (await (await fetch(`${p.probes.url}/status`)).json()) as { tls: unknown };
    expect(status.tls).toBeNull();
  });
});

describe("ponger metrics and probes", () => {
  it("counts pings received and POST /ping as a failure", async () => {
    const p = await ponger(mtls());
    for (let i = 0; i < 3; i++) await fetchOnce(p.pingUrl, client());
    const post = await fetchOnce(p.pingUrl, client(), "POST");
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe("GET, HEAD");
    const notFound = await fetchOnce(p.pingUrl.replace("/ping", "/other"), client());
    expect(notFound.status).toBe(404);

    const metrics = await (await fetch(`${p.probes.url}/metrics`)).text();
    expect(metricValue(metrics, "ping_requests_received_total")).toBe(4);
    expect(metricValue(metrics, 'ping_failures_total{reason="method_not_allowed"}')).toBe(1);
    expect(metrics).toContain("process_cpu_seconds_total");
  });

  it("serves /healthz, /readyz and /status with the loaded certificates", async () => {
    const p = await ponger(mtls());
    expect((await fetch(`${p.probes.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${p.probes.url}/readyz`)).status).toBe(200);
    const status = (await (await fetch(`${p.probes.url}/status`)).json()) as {
      pod: string;
      mutualTls: boolean;
      tls: {
        certificate: { sha256Fingerprint: string; serial: string; notAfter: string };
        trustBundle: { sha256Fingerprint: string }[];
      };
    };
    const { X509Certificate } = await import("node:crypto");
    const leaf = new X509Certificate(pki.server.certificatePem);
    expect(status.pod).toBe("ponger-0");
    expect(status.mutualTls).toBe(true);
    expect(status.tls.certificate.sha256Fingerprint).toBe(leaf.fingerprint256);
    expect(status.tls.certificate.serial).toBe(leaf.serialNumber.toLowerCase());
    expect(status.tls.certificate.notAfter).toBe(new Date(leaf.validTo).toISOString());
    expect(status.tls.trustBundle.map((c) => c.sha256Fingerprint)).toEqual([
      new X509Certificate(pki.ca.certificatePem).fingerprint256,
    ]);
    const body = JSON.stringify(status);
    expect(body).not.toContain("PRIVATE KEY");
  });
});
