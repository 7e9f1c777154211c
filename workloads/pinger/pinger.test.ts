import { createServer, type Server } from "node:http";
import { createServer as createTcpServer, type Socket, type Server as TcpServer } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../lib/logger.ts";
import { mintTestPki, type TestPki } from "../../lib/pki/testing/fixtures.ts";
import { type Ponger, startPonger } from "../ponger/ponger.ts";
import { startHostilePonger } from "../testing/hostile-ponger.ts";
import { KubeletVolume } from "../testing/kubelet-volume.ts";
import { metricValue } from "../testing/tls-client.ts";
import type { PingerConfig } from "./config.ts";
import type { PingAnswer } from "./ping-client.ts";
import { judgeAnswer, type Pinger, type PingerStatus, pingsPerConnection, startPinger } from "./pinger.ts";

const logger = createLogger("pinger-test", { write: () => undefined });
let pki: TestPki;
let other: TestPki;
let serverVolume: KubeletVolume;
let clientVolume: KubeletVolume;
let strangerVolume: KubeletVolume;
let impostorVolume: KubeletVolume;
let ponger: Ponger;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  [pki, other] = await Promise.all([mintTestPki("pinger"), mintTestPki("other")]);
  [serverVolume, clientVolume, strangerVolume, impostorVolume] = await Promise.all([
    KubeletVolume.create({
      "tls.crt": pki.server.certificatePem,
      "tls.key": pki.server.privateKeyPem,
      "ca.crt": pki.ca.certificatePem,
    }),
    KubeletVolume.create({
      "tls.crt": pki.client.certificatePem,
      "tls.key": pki.client.privateKeyPem,
      "ca.crt": pki.ca.certificatePem,
    }),
    KubeletVolume.create({
      "tls.crt": other.client.certificatePem,
      "tls.key": other.client.privateKeyPem,
      "ca.crt": other.ca.certificatePem,
    }),
    // Trusts the ponger, presents a certificate the ponger does not trust.
    KubeletVolume.create({
      "tls.crt": other.client.certificatePem,
      "tls.key": other.client.privateKeyPem,
      "ca.crt": pki.ca.certificatePem,
    }),
  ]);
  ponger = await startPonger(
    {
      service: {
        address: "127.0.0.1",
        port: 0,
        protocol: "https",
        tlsCertificate: serverVolume.path("tls.crt"),
        tlsPrivateKey: serverVolume.path("tls.key"),
        clientCA: serverVolume.path("ca.crt"),
      },
      metrics: { address: "127.0.0.1", port: 0 },
      podName: "ponger-a",
    },
    logger,
  );
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});
afterAll(async () => {
  await ponger.close();
  await Promise.all([serverVolume, clientVolume, strangerVolume, impostorVolume].map((v) => v.remove()));
});

async function pinger(
  url: string,
  volume: KubeletVolume | undefined,
  overrides: Partial<PingerConfig> = {},
): Promise<Pinger> {
  const started = await startPinger(
    {
      ponger: volume
        ? {
            url,
            acceptCert: volume.path("ca.crt"),
            clientCertificate: volume.path("tls.crt"),
            clientPrivateKey: volume.path("tls.key"),
          }
        : { url },
      intervalMs: 20,
      timeoutMs: 1_000,
      // Most tests count every ping from the first; the start-up wait has tests of its own.
      startupGraceMs: 0,
      metrics: { address: "127.0.0.1", port: 0 },
      podName: "pinger-0",
      ...overrides,
    },
    logger,
  );
  cleanups.push(() => started.close());
  return started;
}

async function until(
  p: Pinger,
  done: (s: PingerStatus) => boolean,
  timeoutMs = 10_000,
): Promise<PingerStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = p.status();
    if (done(status)) return status;
    if (Date.now() > deadline) throw new Error(`condition not met; status: ${JSON.stringify(status)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Listens on loopback (on `port`, or one it picks); the cleanup destroys open connections so close() cannot hang on them. */
async function listen(server: Server | TcpServer, port = 0): Promise<string> {
  const sockets = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  const address = server.address();
  cleanups.push(
    () =>
      new Promise((resolve) => {
        server.close(resolve);
        for (const socket of sockets) socket.destroy();
      }),
  );
  return `127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
}

describe("pinger against a ponger over mutual TLS", () => {
  it("gets pongs, counts them by pod and reports latency", async () => {
    const p = await pinger(ponger.pingUrl, clientVolume);
    const status = await until(p, (s) => s.succeeded >= 5);
    expect(status.failed).toBe(0);
    expect(status.pongsByPod["ponger-a"]).toBe(status.succeeded);
    expect(status.latencyP50Ms).toBeGreaterThan(0);
    expect(status.latencyP99Ms).toBeGreaterThanOrEqual(status.latencyP50Ms ?? 0);
    expect(status.lastPongTime).not.toBeNull();

    expect((await fetch(`${p.probes.url}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${p.probes.url}/metrics`)).text();
    expect(metricValue(metrics, "ping_requests_sent_total")).toBeGreaterThanOrEqual(5);
    expect(metricValue(metrics, 'ping_pongs_total{ponger_pod="ponger-a"}')).toBeGreaterThanOrEqual(5);
    expect(metricValue(metrics, "ping_rtt_seconds_count")).toBeGreaterThanOrEqual(5);

    const served = (await (await fetch(`${p.probes.url}/status`)).json()) as {
      tls: { certificate: { subject: string }; trustBundle: unknown[] };
    };
    expect(served.tls.certificate.subject).toContain("CN=pinger-client");
    expect(served.tls.trustBundle).toHaveLength(1);
  });

  it("fails with reason tls when it does not trust the ponger's certificate, and is not ready", async () => {
    const p = await pinger(ponger.pingUrl, strangerVolume);
    const status = await until(p, (s) => s.failed >= 3);
    expect(status.succeeded).toBe(0);
    expect(status.failuresByReason.tls).toBe(status.failed);
    expect(status.lastFailure?.message).toMatch(/TLS error SELF_SIGNED_CERT_IN_CHAIN/);
    const readyz = await fetch(`${p.probes.url}/readyz`);
    expect(readyz.status).toBe(503);
    expect(await readyz.text()).toMatch(/the last 3 pings failed: TLS error/);
  });

  it("fails with reason tls when the ponger refuses its certificate in the handshake", async () => {
    const p = await pinger(ponger.pingUrl, impostorVolume);
    const status = await until(p, (s) => s.failed >= 3);
    expect(status.succeeded).toBe(0);
    expect(status.failuresByReason.tls).toBe(status.failed);
    expect(status.lastFailure?.message).toBe(
      "the ponger closed the connection after the TLS handshake without answering: it refuses this pinger's client certificate (its log says why)",
    );
  });
});

describe("pinger connections", () => {
  it("opens a new connection every few pings, so a Service can spread them over every ponger", async () => {
    const connections: number[] = [];
    const server = createServer((_request, response) => {
      response.setHeader("x-ponger-pod", "ponger-a");
      response.end("pong");
    });
    server.on("connection", () => connections.push(0));
    server.on("request", () => {
      const last = connections.length - 1;
      connections[last] = (connections[last] ?? 0) + 1;
    });
    const address = await listen(server);
    const p = await pinger(`http://${address}/ping`, undefined);
    const status = await until(p, (s) => s.succeeded >= 3 * pingsPerConnection);
    expect(status.failed).toBe(0);
    // Every connection but the current one carried exactly pingsPerConnection pings.
    expect(connections.length).toBeGreaterThanOrEqual(3);
    expect(connections.slice(0, -1).every((pings) => pings === pingsPerConnection)).toBe(true);
  });
});

describe("pinger pod counts", () => {
  it("keeps a bounded set of ponger pods when every answer names a new one", async () => {
    let n = 0;
    const server = createServer((_request, response) => {
      response.setHeader("x-ponger-pod", `pod-${n++}`);
      response.end("pong");
    });
    const address = await listen(server);
    const p = await pinger(`http://${address}/ping`, undefined, { intervalMs: 5 });
    const status = await until(p, (s) => s.succeeded >= 150);
    expect(Object.keys(status.pongsByPod).length).toBe(64);
    const metrics = await (await fetch(`${p.probes.url}/metrics`)).text();
    expect(metrics.match(/^ping_pongs_total\{/gm)).toHaveLength(64);
  });
});

/** A plain-HTTP ponger answering every request with `status` and `body`, as pod `pod`. */
const answering = (status: number, body: string, pod = "ponger-late") =>
  createServer((_req, res) => {
    res.writeHead(status, { "x-ponger-pod": pod }).end(body);
  });

/** A loopback port nothing listens on (yet). */
async function closedPort(): Promise<number> {
  const probe = createTcpServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const address = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  return typeof address === "object" && address ? address.port : 0;
}

describe("where a ping travels", () => {
  it("counts pongs by the node the ponger names, and says its own node", async () => {
    // Every other answer names its node; the rest do not say.
    const server = createServer((_request, res) => {
      const node = answeredByA ? "node-a" : undefined;
      answeredByA = !answeredByA;
      res.writeHead(200, { "x-ponger-pod": "p", ...(node ? { "x-ponger-node": node } : {}) }).end("pong");
    });
    let answeredByA = true;
    const address = await listen(server);
    const p = await pinger(`http://${address}/ping`, undefined, { nodeName: "node-z" });
    await until(p, (s) => s.succeeded >= 6);
    const status = (await (await fetch(`${p.probes.url}/status`)).json()) as {
      node: string;
      pongsByNode: Record<string, number>;
      window: { succeeded: number };
    };
    expect(status.node).toBe("node-z");
    expect(Object.keys(status.pongsByNode).sort()).toEqual(["node-a", "unknown"]);
    expect((status.pongsByNode["node-a"] ?? 0) + (status.pongsByNode.unknown ?? 0)).toBe(
      status.window.succeeded,
    );
  });
});

describe("pinger start-up: waiting until the ponger is reachable", () => {
  it("does not count attempts before the ponger listens; its first answer is the first ping", async () => {
    const port = await closedPort();
    const p = await pinger(`http://127.0.0.1:${port}/ping`, undefined, {
      intervalMs: 1_000,
      startupGraceMs: 30_000,
    });
    await until(p, (s) => s.startup.unreachedAttempts >= 3);
    const waiting = await fetch(`${p.probes.url}/readyz`);
    expect(waiting.status).toBe(503);
    expect(await waiting.text()).toMatch(
      /the ponger is not reachable yet \(\d+ attempts\): connection failed/,
    );
    await listen(answering(200, "pong"), port);
    const status = await until(p, (s) => s.succeeded >= 1);
    expect(status).toMatchObject({ sent: 1, succeeded: 1, failed: 0, lastFailure: null });
    expect(status.window).toMatchObject({ sent: 1, succeeded: 1, failed: 0 });
    expect(status.startup.reachedAfterMs).toBeGreaterThan(0);
    // Attempts are made every 250 ms (the interval is 1 s), so the ponger is reached within about that.
    expect(status.startup.unreachedAttempts).toBeGreaterThanOrEqual(3);
    const metrics = await (await fetch(`${p.probes.url}/metrics`)).text();
    expect(metricValue(metrics, "ping_startup_attempts_total")).toBe(status.startup.unreachedAttempts);
    expect(metricValue(metrics, "ping_requests_sent_total")).toBe(1);
    expect(metrics).not.toMatch(/^ping_failures_total\{/m);
    expect((await fetch(`${p.probes.url}/readyz`)).status).toBe(200);
  });

  it("ends the wait at the first answer, a failed one too: a ponger that answers 503 was reached", async () => {
    const address = await listen(answering(503, "overloaded"));
    const p = await pinger(`http://${address}/ping`, undefined, { intervalMs: 50, startupGraceMs: 30_000 });
    const status = await until(p, (s) => s.failed >= 2);
    expect(status.startup).toMatchObject({ unreachedAttempts: 0 });
    expect(status.startup.reachedAfterMs).not.toBeNull();
    expect(status.failuresByReason.http_status).toBe(status.failed);
  });

  it("counts every failure once the grace has passed without reaching the ponger", async () => {
    const port = await closedPort();
    const p = await pinger(`http://127.0.0.1:${port}/ping`, undefined, {
      intervalMs: 50,
      startupGraceMs: 300,
    });
    const status = await until(p, (s) => s.failed >= 2);
    expect(status.startup.reachedAfterMs).toBeNull();
    expect(status.startup.unreachedAttempts).toBeGreaterThanOrEqual(1);
    expect(status.failuresByReason.connection).toBe(status.failed);
  });
});

describe("pinger failure reasons", () => {
  it("reports a refused connection", async () => {
    const probe = createTcpServer();
    const address = await listen(probe);
    await new Promise((resolve) => probe.close(resolve));
    const p = await pinger(`http://${address}/ping`, undefined);
    const status = await until(p, (s) => s.failed >= 2);
    expect(status.failuresByReason.connection).toBe(status.failed);
    expect(status.lastFailure?.message).toMatch(/ECONNREFUSED/);
  });

  it("reports a timeout when the ponger never answers", async () => {
    const silent = createTcpServer(() => undefined);
    const address = await listen(silent);
    const p = await pinger(`http://${address}/ping`, undefined, { timeoutMs: 100, intervalMs: 50 });
    const status = await until(p, (s) => s.failed >= 2);
    expect(status.failuresByReason.timeout).toBe(status.failed);
    expect(status.lastFailure?.message).toBe("no answer within 100 ms");
  });

  it("reports an HTTP error status and an unexpected body", async () => {
    let answer = { status: 503, body: "overloaded" };
    const server = createServer((_req, res) => {
      res.writeHead(answer.status).end(answer.body);
    });
    const address = await listen(server);
    const p = await pinger(`http://${address}/ping`, undefined);
    await until(p, (s) => (s.failuresByReason.http_status ?? 0) >= 2);
    expect(p.status().lastFailure?.message).toMatch(/HTTP 503 from unknown: overloaded/);
    answer = { status: 200, body: "ping?" };
    await until(p, (s) => (s.failuresByReason.bad_body ?? 0) >= 1);
    expect(p.status().lastFailure?.message).toBe('expected "pong", got "ping?"');
  });

  it("counts a ponger that accepts connections but never finishes TLS as timeouts, every ping ending", async () => {
    const frozen = createTcpServer(() => undefined);
    const address = await listen(frozen);
    const p = await pinger(`https://${address}/ping`, clientVolume, { timeoutMs: 100, intervalMs: 50 });
    const status = await until(p, (s) => s.failed >= 4);
    expect(status.failuresByReason.timeout).toBe(status.failed);
    // Every ping sent has ended but the ones younger than their deadline.
    expect(status.sent - status.failed - status.succeeded).toBeLessThanOrEqual(3);
    expect((await fetch(`${p.probes.url}/readyz`)).status).toBe(503);
  });

  it("reads no more than a pong's worth of an answer", async () => {
    const huge = Buffer.alloc(8 * 1024 * 1024, "a");
    const server = createServer((_req, res) => {
      res.writeHead(200).end(huge);
    });
    const address = await listen(server);
    const p = await pinger(`http://${address}/ping`, undefined, { intervalMs: 50 });
    const status = await until(p, (s) => (s.failuresByReason.bad_body ?? 0) >= 2);
    expect(status.lastFailure?.message).toMatch(/UND_ERR_RES_EXCEEDED_MAX_SIZE/);
  });
});

describe("pinger against a hostile ponger", () => {
  const good = "HTTP/1.1 200 OK\r\nx-ponger-pod: good\r\n";
  const chunked = `${good}transfer-encoding: chunked\r\n\r\n`;
  it.each([
    [
      "chunk data without its CRLF",
      `${chunked}4\r\npongXX0\r\n\r\n`,
      "bad_body",
      /Expected LF after chunk data/,
    ],
    [
      "Content-Length and Transfer-Encoding both",
      `${good}content-length: 4\r\ntransfer-encoding: chunked\r\n\r\n4\r\npong\r\n0\r\n\r\n`,
      "bad_body",
      /does not match content-length/,
    ],
    ["status 000", "HTTP/1.1 000 OK\r\ncontent-length: 4\r\n\r\npong", "bad_body", /ERR_ASSERTION/],
    [
      "a header of 2000 spaces and a control byte",
      `${good}x-a: ${" ".repeat(2000)}\u0001\r\ncontent-length: 4\r\n\r\npong`,
      "bad_body",
      /Invalid header value char/,
    ],
    [
      "a head of 1 MiB",
      `${good}${`x-h: ${"a".repeat(1000)}\r\n`.repeat(1024)}\r\npong`,
      "bad_body",
      /Headers Overflow/,
    ],
    [
      "endless trailers",
      { head: `${chunked}4\r\npong\r\n0\r\n`, forever: `x-t: ${"a".repeat(1000)}\r\n` },
      "bad_body",
      /Headers Overflow/,
    ],
    [
      "an endless body",
      { head: chunked, forever: `3e8\r\n${"a".repeat(1000)}\r\n` },
      "bad_body",
      /exceeded max size/,
    ],
    // undici skips chunk extensions without a limit of its own: the ping ends at its deadline, and
    // what streamed past is never held.
    [
      "an endless chunk extension",
      { head: `${chunked}4;`, forever: "a".repeat(1000) },
      "timeout",
      /no answer within/,
    ],
  ] as const)(
    "%s is a failed ping with a reason, and the next good answer a pong",
    async (_name, hostile, reason, why) => {
      const hostilePonger = await startHostilePonger(hostile, { thenGood: true });
      cleanups.push(() => hostilePonger.close());
      const { url } = hostilePonger;
      const rssBefore = process.memoryUsage.rss();
      const p = await pinger(url, undefined, { intervalMs: 100, timeoutMs: 2_000 });
      const status = await until(p, (s) => s.failed >= 1 && s.succeeded >= 1);
      expect(status.failed).toBe(1);
      expect(status.lastFailure?.reason).toBe(
        typeof hostile === "object" && why.source.includes("within") ? "timeout" : "bad_body",
      );
      expect(status.lastFailure?.message).toMatch(why);
      expect(status.pongsByPod.good).toBe(status.succeeded);
      // Nothing of the answer is kept: whatever was sent (up to a gigabyte in two seconds), memory stays.
      expect(process.memoryUsage.rss() - rssBefore).toBeLessThan(128 * 2 ** 20);
    },
  );
});

describe("judgeAnswer", () => {
  const answer = (over: Partial<PingAnswer>): PingAnswer => ({
    status: 200,
    body: "pong",
    pod: "ponger-a",
    node: undefined,
    ...over,
  });

  it.each([
    [answer({}), undefined],
    [
      answer({ status: 503, body: "overloaded" }),
      { reason: "http_status", message: "HTTP 503 from ponger-a: overloaded" },
    ],
    [answer({ body: "ping?" }), { reason: "bad_body", message: 'expected "pong", got "ping?"' }],
    [
      answer({ status: 200, pod: undefined, body: "" }),
      { reason: "bad_body", message: 'expected "pong", got ""' },
    ],
  ])("%# judges the answer", (given, expected) => {
    expect(judgeAnswer(given)).toEqual(expected);
  });
});
