/**
 * Just enough HTTP/1.1 for the ponger and the workloads' probe port, served straight on a TLS (or
 * TCP) socket.
 *
 * Why not node:http: the ponger answers one bodiless request with four bytes, and on one core over
 * mutual TLS node:http's per-request machinery (IncomingMessage, ServerResponse, writable streams)
 * cost more than the TLS itself: a bare node:https "pong" server reached 0.81x the requests per second
 * of the Go ponger this project replaces, the same answer written here 1.28x (bench/workloads.ts).
 *
 * What it does: request heads parsed strictly (RFC 9112 request line and field syntax, CRLF line
 * ends, a size limit), pipelined requests answered in order, keep-alive unless the client or
 * HTTP/1.0 says otherwise, backpressure (a client that does not read its answers stops being read),
 * a deadline for a started head and an idle timeout. What it does not: request bodies. A request that
 * announces one gets its answer and the connection closes, unread.
 */
import type { Socket } from "node:net";
import { httpDate as formatHttpDate } from "./time.ts";

export interface RequestHead {
  readonly method: string;
  /** The request target as sent, query included. */
  readonly target: string;
  /** The client wants the connection closed after this answer (or speaks HTTP/1.0 without keep-alive). */
  readonly close: boolean;
  /** Content-Length above 0 or any Transfer-Encoding: a body follows that we will not read. */
  readonly hasBody: boolean;
}

export type ParseResult =
  | { readonly kind: "request"; readonly head: RequestHead; readonly length: number }
  | { readonly kind: "incomplete" }
  | { readonly kind: "invalid"; readonly status: 400 | 431 | 505; readonly reason: string };

const requestLine = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) ([\x21-\x7e]+) HTTP\/(\d)\.(\d)$/;
const fieldLine = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([\t\x20-\x7e\x80-\xff]*?)[ \t]*$/;

/**
 * Reads one request head from the start of `buffer` (bytes as latin1 text, so string length is byte
 * length). `length` is how much of the buffer the head took.
 */
export function parseRequestHead(buffer: string, maxHeadBytes: number): ParseResult {
  const end = buffer.indexOf("\r\n\r\n");
  if (end === -1 || end + 4 > maxHeadBytes) {
    return end === -1 && buffer.length < maxHeadBytes
      ? { kind: "incomplete" }
      : { kind: "invalid", status: 431, reason: `request head longer than ${maxHeadBytes} bytes` };
  }
  const text = buffer.slice(0, end);
  // A keep-alive client sends the same head every time: parse it once.
  if (text !== lastHead.text) lastHead = { text, parsed: parseHeadText(text) };
  const { parsed } = lastHead;
  return "status" in parsed
    ? { kind: "invalid", ...parsed }
    : { kind: "request", head: parsed, length: end + 4 };
}

let lastHead: { text: string; parsed: RequestHead | Invalid } = {
  text: "",
  parsed: { status: 400, reason: "empty" },
};

type Invalid = { readonly status: 400 | 505; readonly reason: string };

function parseHeadText(text: string): RequestHead | Invalid {
  const lines = text.split("\r\n");
  const first = requestLine.exec(lines[0] ?? "");
  if (!first) return { status: 400, reason: "malformed request line" };
  const [, method = "", target = "", major, minor] = first;
  if (major !== "1") return { status: 505, reason: `HTTP/${major}.${minor} is not served` };

  let host = 0;
  let keepAlive = false;
  let close = false;
  let hasBody = false;
  for (let i = 1; i < lines.length; i++) {
    const field = fieldLine.exec(lines[i] ?? "");
    if (!field) return { status: 400, reason: `malformed header line ${i}` };
    const name = (field[1] ?? "").toLowerCase();
    const value = field[2] ?? "";
    if (name === "host") host++;
    else if (name === "connection") {
      for (const option of value.toLowerCase().split(",")) {
        const token = option.trim();
        if (token === "close") close = true;
        else if (token === "keep-alive") keepAlive = true;
      }
    } else if (name === "transfer-encoding") hasBody = true;
    else if (name === "content-length") {
      if (!/^\d+$/.test(value)) return { status: 400, reason: "malformed Content-Length" };
      if (Number(value) > 0) hasBody = true;
    }
  }
  const http10 = minor === "0";
  // RFC 9112 section 3.2: an HTTP/1.1 request without exactly one Host is answered with 400.
  if (!http10 && host !== 1) return { status: 400, reason: "missing or repeated Host header" };
  return { method, target, close: close || (http10 && !keepAlive), hasBody };
}

export interface Answer {
  readonly status: number;
  /** Lower-case names; Content-Length, Date and Connection are added. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  /** Close the connection after this answer. */
  readonly close?: boolean;
}

const reasons: Readonly<Record<number, string>> = {
  200: "OK",
  400: "Bad Request",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  503: "Service Unavailable",
  505: "HTTP Version Not Supported",
};

/** The Date header's value, computed at most once a second (RFC 9110: origin servers send it). */
let dateSecond = 0;
let dateText = "";
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = formatHttpDate(now);
  }
  return dateText;
}

/**
 * The bytes of an answer, as latin1 text (header values are ASCII; the body is too). An answer to
 * HEAD has the headers of the answer to GET and no body.
 */
export function formatAnswer(answer: Answer, options: { head: boolean; close: boolean }): string {
  // The common case, a GET on a kept-alive connection, is put together once a second per answer.
  if (!options.head && !options.close) {
    const second = Math.floor(Date.now() / 1000);
    const cached = rendered.get(answer);
    if (cached?.second === second) return cached.text;
    const text = render(answer, options);
    rendered.set(answer, { second, text });
    return text;
  }
  return render(answer, options);
}

const rendered = new WeakMap<Answer, { second: number; text: string }>();

function render(answer: Answer, options: { head: boolean; close: boolean }): string {
  let text = `HTTP/1.1 ${answer.status} ${reasons[answer.status] ?? "Unknown"}\r\ndate: ${httpDate()}\r\n`;
  for (const [name, value] of Object.entries(answer.headers)) text += `${name}: ${value}\r\n`;
  text += `content-length: ${answer.body.length}\r\n`;
  if (options.close) text += "connection: close\r\n";
  return `${text}\r\n${options.head ? "" : answer.body}`;
}

const refusal = (status: number, reason: string) =>
  formatAnswer(
    { status, headers: { "content-type": "text/plain" }, body: `${reason}\n` },
    { head: false, close: true },
  );

export interface ServeOptions {
  /** Largest request head accepted (431 beyond). */
  readonly maxHeadBytes: number;
  /** A started request head must be complete within this time (408, then close). */
  readonly headTimeoutMs: number;
  /** A connection that sends nothing for this long is closed (within up to half as long again). */
  readonly idleTimeoutMs: number;
  readonly onRequest: (head: RequestHead) => Answer;
  /** A request that could not be parsed, after its 4xx answer was sent. */
  readonly onInvalid?: (reason: string) => void;
}

/** Serves HTTP/1.1 on one connected (and, for TLS, handshaken) socket until either side closes it. */
export function serveConnection(socket: Socket, options: ServeOptions): void {
  let pending = "";
  let closing = false;
  // Runs from the first byte of a request head until the head is complete: a client trickling a head
  // in byte by byte does not get to hold the connection by staying barely active.
  let headTimer: NodeJS.Timeout | undefined;

  const finish = (text: string) => {
    closing = true;
    clearTimeout(headTimer);
    socket.end(text, "latin1");
  };

  socket.setNoDelay(true);
  // Idle connections are swept rather than timed out with socket.setTimeout, which re-arms a timer on
  // every read and write: a connection silent for a whole sweep period (half the idle timeout) is
  // closed at the next sweep.
  let heard = true;
  const sweep = setInterval(() => {
    if (!heard) socket.destroy();
    heard = false;
  }, options.idleTimeoutMs / 2);
  sweep.unref();
  socket.on("error", () => socket.destroy());
  socket.on("close", () => {
    clearTimeout(headTimer);
    clearInterval(sweep);
  });
  socket.on("drain", () => socket.resume());
  socket.on("data", (chunk: Buffer) => {
    heard = true;
    if (closing) return;
    pending += chunk.toString("latin1");
    let out = "";
    let answered = false;
    while (pending.length > 0) {
      const parsed = parseRequestHead(pending, options.maxHeadBytes);
      if (parsed.kind === "incomplete") break;
      if (parsed.kind === "invalid") {
        finish(out + refusal(parsed.status, parsed.reason));
        options.onInvalid?.(parsed.reason);
        return;
      }
      pending = pending.slice(parsed.length);
      answered = true;
      const { head } = parsed;
      const answer = options.onRequest(head);
      const close = answer.close === true || head.close || head.hasBody;
      out += formatAnswer(answer, { head: head.method === "HEAD", close });
      if (close) {
        finish(out);
        return;
      }
    }
    if (answered || pending.length === 0) {
      clearTimeout(headTimer);
      headTimer = undefined;
    }
    if (pending.length > 0 && headTimer === undefined) {
      headTimer = setTimeout(() => {
        if (!closing) finish(refusal(408, "request head not complete in time"));
      }, options.headTimeoutMs);
    }
    // A client that pipelines without reading its answers is not read until it does.
    if (out !== "" && !socket.write(out, "latin1")) socket.pause();
  });
}
