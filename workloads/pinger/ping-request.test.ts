import { createServer, type Server, type Socket } from "node:net";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { classifyError } from "./failure.ts";
import { MalformedAnswerError, parseAnswerHead, PingClient, readChunked } from "./ping-request.ts";

describe("parseAnswerHead", () => {
  it("reads the status, the fields and how the body ends", () => {
    const head = parseAnswerHead("HTTP/1.1 200 OK\r\nContent-Length: 4\r\nX-Ponger-Pod: p-1");
    expect(head.status).toBe(200);
    expect(head.fields.get("x-ponger-pod")).toBe("p-1");
    expect(head.framing).toEqual({ kind: "length", length: 4 });
    expect(head.keepAlive).toBe(true);
  });

  it("knows when the connection will not be kept", () => {
    expect(parseAnswerHead("HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close").keepAlive).toBe(
      false,
    );
    expect(parseAnswerHead("HTTP/1.0 200 OK\r\ncontent-length: 4").keepAlive).toBe(false);
    expect(parseAnswerHead("HTTP/1.0 200 OK\r\ncontent-length: 4\r\nconnection: keep-alive").keepAlive).toBe(
      true,
    );
    // Without a length the body ends with the connection.
    const unframed = parseAnswerHead("HTTP/1.1 200 OK");
    expect(unframed.framing).toEqual({ kind: "close" });
    expect(unframed.keepAlive).toBe(false);
    expect(parseAnswerHead("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked").framing).toEqual({
      kind: "chunked",
    });
  });

  it("refuses what is not an HTTP/1.x answer, saying what it got", () => {
    expect(() => parseAnswerHead("SSH-2.0-OpenSSH_9.2")).toThrow(/not an HTTP\/1.x status line: "SSH-2.0/);
    expect(() => parseAnswerHead("HTTP/1.1 200 OK\r\nno colon here")).toThrow(MalformedAnswerError);
    expect(() => parseAnswerHead("HTTP/1.1 200 OK\r\ncontent-length: -1")).toThrow(/bad Content-Length/);
  });
});

describe("readChunked", () => {
  it("joins chunks, skips extensions and trailers, and waits for the end", () => {
    const text = "2;x=y\r\npo\r\n2\r\nng\r\n0\r\nx-trailer: 1\r\n\r\nNEXT";
    expect(readChunked(text)).toEqual({ body: "pong", length: text.length - 4 });
    for (let cut = 0; cut < text.length - 4; cut++) expect(readChunked(text.slice(0, cut))).toBeUndefined();
  });

  it("reads any split of a body back whole", () => {
    fc.assert(
      fc.property(fc.array(fc.string({ minLength: 1, maxLength: 40 }), { maxLength: 20 }), (parts) => {
        const encoded = parts.map((p) => `${p.length.toString(16)}\r\n${p}\r\n`).join("") + "0\r\n\r\n";
        expect(readChunked(encoded)).toEqual({ body: parts.join(""), length: encoded.length });
      }),
    );
  });

  it("stops at maxAnswerBytes", () => {
    expect(() => readChunked(`2000\r\n${"x".repeat(0x2000)}\r\n0\r\n\r\n`)).toThrow(/longer than 4096/);
  });
});

/** A loopback server answering each request (a head ending in CRLF CRLF) with `answers(n)` bytes. */
async function server(
  answer: (socket: Socket, request: number) => void,
): Promise<{ url: URL; server: Server; connections: () => number; requests: string[] }> {
  let connections = 0;
  let requests = 0;
  const seen: string[] = [];
  const s = createServer((socket) => {
    connections++;
    sockets.add(socket);
    let buffer = "";
    socket.on("data", (chunk: Buffer) => {
      buffer += chunk.toString("latin1");
      let end;
      while ((end = buffer.indexOf("\r\n\r\n")) !== -1) {
        seen.push(buffer.slice(0, end));
        buffer = buffer.slice(end + 4);
        answer(socket, ++requests);
      }
    });
    socket.on("error", () => undefined);
  });
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const { port } = s.address() as { port: number };
  servers.push(s);
  return {
    url: new URL(`http://127.0.0.1:${port}/ping`),
    server: s,
    connections: () => connections,
    requests: seen,
  };
}

const servers: Server[] = [];
const sockets = new Set<Socket>();
const clients: PingClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.destroy();
  await Promise.all(
    servers.splice(0).map((s) => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => s.close(resolve));
    }),
  );
});

const pong = "HTTP/1.1 200 OK\r\ncontent-length: 4\r\nx-ponger-pod: p-1\r\n\r\npong";
const ping = (client: PingClient, closeConnection = false) =>
  client.send({ timeoutMs: 2_000, closeConnection });
function client(url: URL): PingClient {
  const c = new PingClient(url, undefined);
  clients.push(c);
  return c;
}

describe("PingClient", () => {
  it("sends a GET with the host, and keeps one connection for the pings that follow", async () => {
    const s = await server((socket) => socket.write(pong));
    const c = client(s.url);
    for (let i = 0; i < 3; i++) {
      expect(await ping(c)).toEqual({ status: 200, body: "pong", pod: "p-1", certificateRefused: false });
    }
    expect(s.connections()).toBe(1);
    expect(s.requests[0]).toBe(`GET /ping HTTP/1.1\r\nhost: 127.0.0.1:${s.url.port}`);
  });

  it("asks for the connection to be closed when told, and then opens a new one", async () => {
    const s = await server((socket) => socket.write(pong));
    const c = client(s.url);
    await ping(c, true);
    await ping(c);
    expect(s.requests[0]).toContain("\r\nconnection: close");
    expect(s.connections()).toBe(2);
  });

  it("reads bodies ended by the connection, chunked, and after an interim 100 Continue", async () => {
    const answers = [
      "HTTP/1.1 200 OK\r\n\r\npong",
      "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\npo\r\n2\r\nng\r\n0\r\n\r\n",
      `HTTP/1.1 100 Continue\r\n\r\n${pong}`,
    ];
    const s = await server((socket, n) => {
      socket.write(answers[n - 1] ?? "");
      if (n === 1) socket.end();
    });
    const c = client(s.url);
    for (let i = 0; i < answers.length; i++) expect((await ping(c)).body).toBe("pong");
  });

  it("sends the ping again on a new connection when the kept one was closed under it", async () => {
    const s = await server((socket, n) => {
      // The first connection answers once, then closes as the second ping arrives, unanswered.
      if (n === 2) socket.destroy();
      else socket.write(pong);
    });
    const c = client(s.url);
    await ping(c);
    expect((await ping(c)).body).toBe("pong");
    expect(s.connections()).toBe(2);
  });

  it("reports a garbled answer as bad_body and an answer that never ends as a timeout", async () => {
    const s = await server((socket, n) => {
      if (n === 1) socket.end("SSH-2.0-OpenSSH_9.2\r\n\r\n");
      else socket.write("HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\npo");
    });
    const c = client(s.url);
    const garbled = await ping(c).catch((error: unknown) => classifyError(error, 2_000));
    expect(garbled).toMatchObject({ reason: "bad_body", code: "MALFORMED_ANSWER" });
    const stalled = await c
      .send({ timeoutMs: 200, closeConnection: false })
      .catch((error: unknown) => classifyError(error, 200));
    expect(stalled).toMatchObject({ reason: "timeout", message: "no answer within 200 ms" });
  });
});
