import { Counter, Registry } from "prom-client";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { fetchOnce, parkedConnections, rawExchange } from "../workloads/testing/tls-client.ts";
import { defaultServerLimits, type ServerLimits } from "./http-server.ts";
import { createLogger } from "./logger.ts";
import { type ProbeServer, type ProbeServerOptions, startProbeServer } from "./probe-server.ts";

const logger = createLogger("probe-test", { write: () => undefined });
const registry = new Registry();
new Counter({ name: "pings_total", help: "Pings.", registers: [registry] }).inc();
let ready = true;
const sources: ProbeServerOptions = {
  registry,
  logger,
  address: "127.0.0.1",
  port: 0,
  readiness: () => (ready ? { ready: true } : { ready: false, reason: "warming up" }),
  status: () => ({ pod: "pönger-ä", note: "naïve ✓" }),
};

let server: ProbeServer;
const extra: ProbeServer[] = [];

beforeAll(async () => {
  server = await startProbeServer(sources);
});
afterEach(async () => {
  await Promise.all(extra.splice(0).map((s) => s.close()));
});
afterAll(() => server.close());

async function withLimits(limits: Partial<ServerLimits>): Promise<ProbeServer> {
  const started = await startProbeServer({ ...sources, limits: { ...defaultServerLimits, ...limits } });
  extra.push(started);
  return started;
}

describe("the probe port", () => {
  it("answers /healthz, /readyz, /metrics and /status", async () => {
    expect(await fetchOnce(`${server.url}/healthz`)).toMatchObject({ status: 200, body: "ok" });
    expect(await fetchOnce(`${server.url}/readyz`)).toMatchObject({ status: 200, body: "ok" });
    const metrics = await fetchOnce(`${server.url}/metrics?x=1`);
    expect(metrics.headers["content-type"]).toBe(registry.contentType);
    expect(metrics.body).toContain("pings_total 1");
    const missing = await fetchOnce(`${server.url}/nope`);
    expect(missing).toMatchObject({
      status: 404,
      body: "not found; this port serves /healthz /readyz /metrics /status\n",
    });
  });

  it("sends /status as UTF-8 JSON with its length in bytes", async () => {
    const response = await fetch(`${server.url}/status`);
    expect(response.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(await response.json()).toEqual({ pod: "pönger-ä", note: "naïve ✓" });
    expect(Number(response.headers.get("content-length"))).toBe(
      Buffer.byteLength(JSON.stringify({ pod: "pönger-ä", note: "naïve ✓" })),
    );
  });

  it("says not ready, and why, with 503", async () => {
    ready = false;
    try {
      expect(await fetchOnce(`${server.url}/readyz`)).toMatchObject({
        status: 503,
        body: "not ready: warming up",
      });
    } finally {
      ready = true;
    }
  });

  it("refuses other methods with 405, saying which are allowed, without reading the body, and closes", async () => {
    const exchange = await rawExchange(
      server.url,
      "POST /metrics HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 50000000\r\n\r\n{",
    );
    expect(exchange.answer).toMatch(/^HTTP\/1\.1 405 Method Not Allowed\r\n/);
    expect(exchange.answer).toContain("allow: GET, HEAD\r\n");
    expect(exchange.answer).toContain("connection: close\r\n");
    expect(exchange.closed).toBe(true);
  });

  it("answers requests one after another on a kept-alive connection", async () => {
    const twice = "GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n".repeat(2);
    const { answer } = await rawExchange(server.url, twice, {
      done: (text) => text.split("\r\n\r\nok").length === 3,
    });
    expect(answer.match(/HTTP\/1\.1 200 OK\r\n/g)).toHaveLength(2);
    expect(answer).not.toContain("connection: close");
  });
});

describe("the probe port tried as an attacker would", () => {
  it("answers a header with a long run of whitespace and a bad byte with 400 at once", async () => {
    for (const spaces of [1000, 4000, 7000]) {
      const { answer, ms } = await rawExchange(
        server.url,
        `GET /healthz HTTP/1.1\r\nhost: x\r\nx-a: ${" ".repeat(spaces)}\u0001\r\n\r\n`,
      );
      expect(answer).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
      expect(ms).toBeLessThan(1_000);
    }
  });

  it("answers a head larger than its limit with 431", async () => {
    const { answer } = await rawExchange(
      server.url,
      `GET /healthz HTTP/1.1\r\nhost: x\r\nx-a: ${"a".repeat(defaultServerLimits.maxHeaderBytes)}\r\n\r\n`,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 431 /);
  });

  it("keeps answering probes with hundreds of connections parked on it, and closes the parked ones", async () => {
    const limited = await withLimits({ headersTimeoutMs: 1_000, timeoutCheckIntervalMs: 100 });
    const silent = await parkedConnections(limited.url, 400);
    const slow = await parkedConnections(limited.url, 100, "GET /healthz HTTP/1.1\r\nhost: x\r\n");
    try {
      for (let i = 0; i < 5; i++) {
        expect(await fetchOnce(`${limited.url}/healthz`)).toMatchObject({ status: 200, body: "ok" });
      }
      // Every parked connection, silent or sending a head it never finishes, is closed by the header
      // timeout (nothing else here closes them).
      const lifetimes = await Promise.all([...silent.closed, ...slow.closed]);
      expect(Math.min(...lifetimes)).toBeGreaterThanOrEqual(900);
    } finally {
      silent.close();
      slow.close();
    }
  });

  it("closes idle kept-alive connections first when crowded", async () => {
    // Kept-alive connections would otherwise stay for ten minutes.
    const limited = await withLimits({ idleConnectionsAbove: 20, keepAliveTimeoutMs: 600_000 });
    const kept = await parkedConnections(limited.url, 40, "GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n");
    try {
      await new Promise<void>((resolve) => {
        let closed = 0;
        for (const lifetime of kept.closed) void lifetime.then(() => ++closed === 20 && resolve());
      });
      expect(await fetchOnce(`${limited.url}/healthz`)).toMatchObject({ status: 200 });
    } finally {
      kept.close();
    }
  });
});
