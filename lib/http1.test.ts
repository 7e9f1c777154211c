import { connect, createServer, type Server, type Socket } from "node:net";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { type Answer, formatAnswer, parseRequestHead, type RequestHead, serveConnection } from "./http1.ts";

const max = 1024;

describe("parseRequestHead", () => {
  it.each([
    [
      "GET /ping HTTP/1.1\r\nHost: p\r\n\r\n",
      { method: "GET", target: "/ping", close: false, hasBody: false },
    ],
    [
      "HEAD /ping?x=1 HTTP/1.1\r\nhost: p\r\nConnection: close\r\n\r\n",
      { method: "HEAD", target: "/ping?x=1", close: true, hasBody: false },
    ],
    ["GET /ping HTTP/1.0\r\n\r\n", { method: "GET", target: "/ping", close: true, hasBody: false }],
    [
      "GET /ping HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
      { method: "GET", target: "/ping", close: false, hasBody: false },
    ],
    [
      "POST /ping HTTP/1.1\r\nHost: p\r\nContent-Length: 5\r\n\r\n",
      { method: "POST", target: "/ping", close: false, hasBody: true },
    ],
    [
      "POST /ping HTTP/1.1\r\nHost: p\r\nContent-Length: 0\r\n\r\n",
      { method: "POST", target: "/ping", close: false, hasBody: false },
    ],
    [
      "POST /ping HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\n\r\n",
      { method: "POST", target: "/ping", close: false, hasBody: true },
    ],
    [
      "GET /ping HTTP/1.1\r\nHost: p\r\nConnection: keep-alive, Close\r\nUser-Agent: x y\r\n\r\n",
      { method: "GET", target: "/ping", close: true, hasBody: false },
    ],
  ])("reads %j", (text, head) => {
    expect(parseRequestHead(text, max)).toEqual({ kind: "request", head, length: text.length });
  });

  it.each([
    ["GET /ping\r\n\r\n", 400, /request line/],
    ["GET  /ping HTTP/1.1\r\nHost: p\r\n\r\n", 400, /request line/],
    ["GET /ping HTTP/1.1\r\n\r\n", 400, /Host/],
    ["GET /ping HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, /Host/],
    ["GET /ping HTTP/1.1\r\nHost: p\r\n folded\r\n\r\n", 400, /header line 2/],
    ["GET /ping HTTP/1.1\r\nHost : p\r\n\r\n", 400, /header line 1/],
    ["GET /ping HTTP/1.1\r\nHost: p\r\nContent-Length: 1e3\r\n\r\n", 400, /Content-Length/],
    ["GET /ping HTTP/2.0\r\nHost: p\r\n\r\n", 505, /HTTP\/2.0/],
    [`GET /ping HTTP/1.1\r\nHost: p\r\nX: ${"a".repeat(max)}\r\n\r\n`, 431, /longer than 1024/],
    [`GET /ping HTTP/1.1\r\nX: ${"a".repeat(max)}`, 431, /longer than 1024/],
  ])("refuses malformed head %# with %i", (text, status, reason) => {
    const parsed = parseRequestHead(text, max);
    expect(parsed).toMatchObject({ kind: "invalid", status });
    expect(parsed.kind === "invalid" && parsed.reason).toMatch(reason);
  });

  it("waits for the rest of a head, and leaves what follows it", () => {
    expect(parseRequestHead("GET /ping HTTP/1.1\r\nHost: p\r\n", max)).toEqual({ kind: "incomplete" });
    const two = "GET /ping HTTP/1.1\r\nHost: p\r\n\r\nGET /other HTTP/1.1\r\nHost: p\r\n\r\n";
    const first = parseRequestHead(two, max);
    expect(first).toMatchObject({ kind: "request", head: { target: "/ping" } });
    const rest = two.slice(first.kind === "request" ? first.length : 0);
    expect(parseRequestHead(rest, max)).toMatchObject({ kind: "request", head: { target: "/other" } });
  });

  it("never throws, and anything it accepts ends at a blank line within the limit", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary-ascii", maxLength: 2 * max }), (text) => {
        const parsed = parseRequestHead(text, max);
        if (parsed.kind === "request") {
          expect(parsed.length).toBeLessThanOrEqual(max);
          expect(text.slice(parsed.length - 4, parsed.length)).toBe("\r\n\r\n");
        }
      }),
    );
  });
});

describe("formatAnswer", () => {
  const pong: Answer = { status: 200, headers: { "x-ponger-pod": "p" }, body: "pong" };

  it("writes the status line, a date, the headers and the length", () => {
    const text = formatAnswer(pong, { head: false, close: false });
    expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\ndate: \w{3}, \d\d \w{3} \d{4} [\d:]{8} GMT\r\n/);
    expect(text.endsWith("x-ponger-pod: p\r\ncontent-length: 4\r\n\r\npong")).toBe(true);
  });

  it("leaves the body out for HEAD and says when the connection closes", () => {
    const text = formatAnswer(pong, { head: true, close: true });
    expect(text.endsWith("content-length: 4\r\nconnection: close\r\n\r\n")).toBe(true);
  });
});

describe("serveConnection", () => {
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  });

  /** A TCP server answering with serveConnection; returns its port and the heads it saw. */
  async function serve(options: Partial<Parameters<typeof serveConnection>[1]> = {}) {
    const seen: RequestHead[] = [];
    const server = createServer((socket) => {
      serveConnection(socket, {
        maxHeadBytes: max,
        headTimeoutMs: 200,
        idleTimeoutMs: 5_000,
        onRequest: (head): Answer => {
          seen.push(head);
          return head.target === "/ping"
            ? { status: 200, headers: { "content-type": "text/plain" }, body: "pong" }
            : { status: 404, headers: {}, body: "no\n" };
        },
        ...options,
      });
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const address = server.address();
    return { port: typeof address === "object" && address ? address.port : 0, seen };
  }

  /** Sends `text` (in pieces, with pauses, when given several) and collects everything until the server closes. */
  async function exchange(port: number, ...pieces: string[]): Promise<{ text: string; closed: boolean }> {
    return exchangePaced(port, 30, pieces);
  }

  async function exchangePaced(
    port: number,
    pauseMs: number,
    pieces: string[],
  ): Promise<{ text: string; closed: boolean }> {
    const socket: Socket = connect(port, "127.0.0.1");
    let text = "";
    socket.on("data", (chunk: Buffer) => (text += chunk.toString("latin1")));
    const closed = new Promise<boolean>((resolve) => socket.on("end", () => resolve(true)));
    for (const piece of pieces) {
      socket.write(piece);
      await new Promise((r) => setTimeout(r, pauseMs));
    }
    const result = await Promise.race([closed, new Promise<boolean>((r) => setTimeout(() => r(false), 600))]);
    socket.destroy();
    return { text, closed: result };
  }

  const statuses = (text: string) => [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));

  it("answers pipelined requests in order and keeps the connection", async () => {
    const { port } = await serve();
    const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: p\r\n\r\n`;
    const { text, closed } = await exchange(
      port,
      get("/ping") + get("/nope") + get("/ping").slice(0, 10),
      get("/ping").slice(10),
    );
    expect(statuses(text)).toEqual([200, 404, 200]);
    expect(text.match(/pong/g)).toHaveLength(2);
    expect(closed).toBe(false);
  });

  it("closes after Connection: close, after HTTP/1.0 and after a request with a body", async () => {
    const { port } = await serve();
    for (const request of [
      "GET /ping HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n",
      "GET /ping HTTP/1.0\r\n\r\n",
      "POST /ping HTTP/1.1\r\nHost: p\r\nContent-Length: 3\r\n\r\nabcGET /ping HTTP/1.1\r\nHost: p\r\n\r\n",
    ]) {
      const { text, closed } = await exchange(port, request);
      expect(statuses(text)).toEqual([200]);
      expect(text).toContain("connection: close\r\n");
      expect(closed).toBe(true);
    }
  });

  it("answers a malformed request with 400 and closes", async () => {
    let invalid = "";
    const { port, seen } = await serve({ onInvalid: (reason) => (invalid = reason) });
    const { text, closed } = await exchange(port, "GET /ping HTTP/1.1\r\nHost: p\r\n\r\nHELLO\r\n\r\n");
    expect(statuses(text)).toEqual([200, 400]);
    expect(closed).toBe(true);
    expect(invalid).toBe("malformed request line");
    expect(seen).toHaveLength(1);
  });

  it("gives a head that trickles in a deadline of its own: 408, then close", async () => {
    const { port, seen } = await serve({ headTimeoutMs: 150 });
    // Every piece keeps the connection busy; the head is still never finished in time.
    const pieces = Array.from({ length: 12 }, () => "X");
    const { text, closed } = await exchange(port, "GET /ping HTTP/1.1\r\n", ...pieces);
    expect(statuses(text)).toEqual([408]);
    expect(closed).toBe(true);
    expect(seen).toHaveLength(0);
  });

  it("closes a connection that stays silent past the idle timeout, and keeps a talking one", async () => {
    const { port } = await serve({ idleTimeoutMs: 600 });
    const silent = connect(port, "127.0.0.1");
    const silentClosed = new Promise<number>((resolve) => {
      const started = Date.now();
      silent.on("close", () => resolve(Date.now() - started));
    });
    silent.on("error", () => undefined);
    // Twelve requests 80 ms apart span more than the idle timeout: all are answered on one connection.
    const talking = await exchangePaced(
      port,
      80,
      Array.from({ length: 12 }, () => "GET /ping HTTP/1.1\r\nHost: p\r\n\r\n"),
    );
    expect(statuses(talking.text)).toEqual(Array.from({ length: 12 }, () => 200));
    const after = await silentClosed;
    expect(after).toBeGreaterThanOrEqual(250);
    expect(after).toBeLessThan(3_000);
  });
});
