import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { defaultServerLimits, type ServerLimits } from "../../lib/http-server.ts";
import { createLogger } from "../../lib/logger.ts";
import { mintTestPki, type TestPki } from "../../lib/pki/testing/fixtures.ts";
import { eventually } from "../../controlplane/testing.ts";
import { KubeletVolume } from "../testing/kubelet-volume.ts";
import { fetchOnce, metricValue, parkedConnections, rawExchange } from "../testing/tls-client.ts";
import type { PongerConfig } from "./config.ts";
import { type Ponger, startPonger } from "./ponger.ts";

let pki: TestPki;
let other: TestPki;
let volume: KubeletVolume;
const running: Ponger[] = [];
const logs: string[] = [];
const logger = createLogger("ponger-test", { write: (line: string) => logs.push(line) });

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
  limits: ServerLimits = defaultServerLimits,
  drill?: string,
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
    drill,
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

  it("refuses a client without a certificate in the handshake, and says why in its log once per peer", async () => {
    const p = await ponger(mtls());
    const before = logs.length;
    for (let i = 0; i < 5; i++) {
      await expect(fetchOnce(p.pingUrl, { ca: pki.ca.certificatePem })).rejects.toThrow(
        /other side closed|reset|socket/i,
      );
    }
    const reported = logs.slice(before).filter((l) => l.includes("Refused a client certificate"));
    expect(reported).toHaveLength(1);
    expect(JSON.parse(reported[0] ?? "{}")).toMatchObject({
      remote: "127.0.0.1",
      code: "NO_CERTIFICATE",
      reason: "no client certificate was presented",
    });
    const metrics = await (await fetch(`${p.probes.url}/metrics`)).text();
    expect(metricValue(metrics, "ponger_tls_handshake_failures_total")).toBe(5);
    // Nothing reached HTTP.
    expect(metricValue(metrics, "ping_requests_received_total")).toBe(0);
  });

  it("refuses a client whose certificate another CA signed, before HTTP, saying why", async () => {
    const p = await ponger(mtls());
    const stranger = {
      ca: pki.ca.certificatePem,
      cert: other.client.certificatePem,
      key: other.client.privateKeyPem,
    };
    const before = logs.length;
    // Even a request that would be answered 400 is never read: the connection ends after the handshake.
    const exchange = await rawExchange(p.pingUrl, "GET /ping HTTP/1.1\r\nhost: x\r\n\r\n", { tls: stranger });
    expect(exchange).toMatchObject({ answer: "", closed: true });
    await expect(fetchOnce(p.pingUrl, stranger)).rejects.toThrow();
    const refused = logs.slice(before).find((l) => l.includes("Refused a client certificate"));
    expect(JSON.parse(refused ?? "{}")).toMatchObject({
      reason: "it is not signed by a CA this ponger trusts",
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

describe("ponger tried as an attacker would", () => {
  const quick = { ...defaultServerLimits, handshakeTimeoutMs: 300, idleTimeoutMs: 300 };

  it("answers a header with a long run of whitespace at once, on both ports, and keeps serving", async () => {
    const p = await ponger(mtls());
    // A header value of 4000 spaces and a byte no header value may hold: froze the hand-written parser.
    const hostile = `GET /ping HTTP/1.1\r\nhost: x\r\nx-a: ${" ".repeat(4000)}\u0001\r\n\r\n`;
    const [ping, probe] = await Promise.all([
      rawExchange(p.pingUrl, hostile, { tls: client() }),
      rawExchange(p.probes.url, hostile.replace("/ping", "/healthz")),
    ]);
    for (const exchange of [ping, probe]) {
      expect(exchange.answer).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
      expect(exchange.ms).toBeLessThan(1_000);
    }
    expect(await fetchOnce(p.pingUrl, client())).toMatchObject({ status: 200, body: "pong" });
    expect((await fetch(`${p.probes.url}/healthz`)).status).toBe(200);
  });

  it("drops connections that never finish a TLS handshake, and keeps serving", async () => {
    const p = await ponger(mtls(), quick);
    const parked = await parkedConnections(p.pingUrl, 50);
    const lifetimes = await Promise.all(parked.closed);
    expect(Math.min(...lifetimes)).toBeGreaterThanOrEqual(250);
    expect(await fetchOnce(p.pingUrl, client())).toMatchObject({ status: 200, body: "pong" });
  });

  it("still pongs a real pinger under a flood of connections that never start TLS", async () => {
    // A handshake timeout longer than the test: only making room can close a parked connection.
    const p = await ponger(mtls(), {
      ...defaultServerLimits,
      maxPendingHandshakes: 100,
      handshakeTimeoutMs: 600_000,
    });
    const flood = await parkedConnections(p.pingUrl, 400);
    try {
      // The oldest parked connections make room as the flood arrives: 300 of them close.
      await new Promise<void>((resolve) => {
        let closed = 0;
        for (const lifetime of flood.closed) void lifetime.then(() => ++closed === 300 && resolve());
      });
      expect(await fetchOnce(p.pingUrl, client())).toMatchObject({ status: 200, body: "pong" });
    } finally {
      flood.close();
    }
  });

  it("never reads a request body: POST /ping is answered 405 and the connection closed", async () => {
    const p = await ponger(mtls());
    const exchange = await rawExchange(
      p.pingUrl,
      `POST /ping HTTP/1.1\r\nhost: x\r\ncontent-type: text/plain\r\ncontent-length: 100000000\r\n\r\n${"a".repeat(1000)}`,
      { tls: client() },
    );
    expect(exchange.answer).toMatch(/^HTTP\/1\.1 405 /);
    expect(exchange.answer).toContain("connection: close");
    expect(exchange.closed).toBe(true);
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

describe("ponger in a fire drill", () => {
  let drillVolume: KubeletVolume;
  const inFiveMinutes = () => new Date(Date.now() + 5 * 60_000).toISOString();
  afterEach(async () => {
    await drillVolume.remove();
  });

  async function drilling(drill: Record<string, unknown>) {
    drillVolume = await KubeletVolume.create({ "drill.json": JSON.stringify(drill) });
    return ponger(mtls(), defaultServerLimits, drillVolume.path("drill.json"));
  }

  it("aborts pings with the drill's status, saying so, and counts them; no restart to start or stop", async () => {
    const p = await drilling({ abortRatio: 1, abortStatus: 500, until: inFiveMinutes() });
    const aborted = await fetchOnce(p.pingUrl, client());
    expect(aborted).toMatchObject({ status: 500 });
    expect(aborted.headers["x-pingpong-drill"]).toBe("abort");
    const metrics = await (await fetch(`${p.probes.url}/metrics`)).text();
    expect(metricValue(metrics, 'ponger_drill_faults_total{fault="abort"}')).toBe(1);
    // The operator removes the drill: the same ponger pongs again.
    await drillVolume.write({ "drill.json": "{}\n" });
    await eventually("the drill cleared", async () =>
      (await fetchOnce(p.pingUrl, client())).status === 200 ? true : undefined,
    );
  });

  it("holds delayed pings for the drill's delay", async () => {
    const p = await drilling({ delayRatio: 1, delayMs: 300, until: inFiveMinutes() });
    const started = performance.now();
    expect(await fetchOnce(p.pingUrl, client())).toMatchObject({ status: 200, body: "pong" });
    expect(performance.now() - started).toBeGreaterThanOrEqual(300);
  });

  it("refuses the pinger's trusted client certificate in the handshake, as a broken rotation would", async () => {
    const p = await drilling({ refuseClientCertificates: true, until: inFiveMinutes() });
    await expect(fetchOnce(p.pingUrl, client())).rejects.toThrow(/other side closed|reset|socket/i);
    const status = (await (await fetch(`${p.probes.url}/status`)).json()) as {
      drill: { injected: { refuse: number } };
    };
    expect(status.drill.injected.refuse).toBe(1);
  });

  it("injects nothing when until has passed, whoever wrote the file", async () => {
    const p = await drilling({
      abortRatio: 1,
      refuseClientCertificates: true,
      until: new Date(Date.now() - 1_000).toISOString(),
    });
    expect(await fetchOnce(p.pingUrl, client())).toMatchObject({ status: 200, body: "pong" });
  });
});
