import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLineLogger } from "../lib/line-logger.ts";
import type { ProbeServer } from "../lib/probe-routes.ts";
import { startProbeServer } from "../lib/probe-server.ts";
import { MetricsRegistry } from "./metrics.ts";
import { startProbePort } from "./probe-port.ts";

const logger = createLineLogger("probe-test", { write: () => undefined });
const registry = new MetricsRegistry();
registry.counter("pings_total", "Pings.").inc();
let ready = true;
const sources = {
  registry,
  logger,
  address: "127.0.0.1",
  port: 0,
  readiness: () => (ready ? ({ ready: true } as const) : ({ ready: false, reason: "warming up" } as const)),
  status: () => ({ pod: "pönger-ä", note: "naïve ✓" }),
};

/** Raw request bytes and the raw answer, up to the server closing or `done` saying it is complete. */
function raw(url: string, request: string, done?: (text: string) => boolean): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(request));
    let text = "";
    socket.on("data", (chunk: Buffer) => {
      text += chunk.toString("latin1");
      if (done?.(text)) {
        socket.destroy();
        resolve(text);
      }
    });
    socket.on("end", () => resolve(text));
    socket.on("error", reject);
  });
}

let lean: ProbeServer;
let classic: ProbeServer;

beforeAll(async () => {
  lean = await startProbePort(sources);
  classic = await startProbeServer(sources);
});
afterAll(async () => {
  await lean.close();
  await classic.close();
});

describe("the workloads' probe port", () => {
  it("answers each route as the operator's node:http probe server does", async () => {
    for (const path of ["/healthz", "/readyz", "/metrics", "/status", "/nope", "/metrics?x=1"]) {
      const [mine, theirs] = await Promise.all([fetch(lean.url + path), fetch(classic.url + path)]);
      expect(mine.status, path).toBe(theirs.status);
      expect(mine.headers.get("content-type"), path).toBe(theirs.headers.get("content-type"));
      expect(await mine.text(), path).toBe(await theirs.text());
    }
  });

  it("sends /status as UTF-8 with its length in bytes", async () => {
    const response = await fetch(`${lean.url}/status`);
    expect(await response.json()).toEqual({ pod: "pönger-ä", note: "naïve ✓" });
    expect(Number(response.headers.get("content-length"))).toBe(
      Buffer.byteLength(JSON.stringify({ pod: "pönger-ä", note: "naïve ✓" })),
    );
  });

  it("says not ready, and why, with 503", async () => {
    ready = false;
    try {
      const response = await fetch(`${lean.url}/readyz`);
      expect(response.status).toBe(503);
      expect(await response.text()).toBe("not ready: warming up");
    } finally {
      ready = true;
    }
  });

  it("refuses other methods with 405, saying which are allowed, and closes", async () => {
    const answer = await raw(lean.url, "POST /metrics HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n");
    expect(answer).toMatch(/^HTTP\/1\.1 405 Method Not Allowed\r\n/);
    expect(answer).toContain("allow: GET, HEAD\r\n");
    expect(answer).toContain("connection: close\r\n");
  });

  it("answers requests one after another on a kept-alive connection", async () => {
    const twice = "GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n".repeat(2);
    const answers = await raw(lean.url, twice, (text) => text.split("\r\n\r\nok").length === 3);
    expect(answers.match(/HTTP\/1\.1 200 OK\r\n/g)).toHaveLength(2);
    expect(answers).not.toContain("connection: close");
  });
});
