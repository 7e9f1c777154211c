/**
 * One ping: a GET over TLS (or TCP) with a deadline that covers everything (connecting, the TLS
 * handshake, the answer), a cap on how much of the answer is read, and the ponger pod's name.
 *
 * The request is written and the answer read here, on node:tls, rather than with node:https (which
 * loads node:http's client, agent, server and parser modules, 2 MiB of a pinger pod's idle RSS) or
 * undici (20 MiB): a pinger sends one small GET a second and reads a four-byte answer. What it reads:
 * a status line and header fields (RFC 9112), a body delimited by Content-Length, chunked coding or
 * the connection's end, interim 1xx answers skipped. One idle connection is kept for the next ping.
 */
import type { Socket } from "node:net";
import type { SecureContext } from "node:tls";
import type { TlsMaterial } from "../tls-files.ts";
import { podHeader, refusedHeader } from "../protocol.ts";

const net = process.getBuiltinModule("node:net");
const tls = process.getBuiltinModule("node:tls");

export interface PingAnswer {
  readonly status: number;
  readonly body: string;
  /** The `x-ponger-pod` header, when the answer had one. */
  readonly pod: string | undefined;
  /** The ponger refused this pinger's client certificate (the body says why). */
  readonly certificateRefused: boolean;
}

/** A pong is four bytes; an answer longer than this is not one, and is not read further. */
export const maxAnswerBytes = 4096;
/** Larger answer heads are not an HTTP server's answer to a ping. */
const maxHeadBytes = 16 * 1024;

export class AnswerTooLargeError extends Error {
  override readonly name = "AnswerTooLargeError";
  readonly code = "ANSWER_TOO_LARGE";
}

export class MalformedAnswerError extends Error {
  override readonly name = "MalformedAnswerError";
  readonly code = "MALFORMED_ANSWER";
}

class PingTimeoutError extends Error {
  override readonly name = "TimeoutError";
}

/** The connection closed before a byte of the answer (the ponger closed it, or it was reset). */
class ClosedBeforeAnswerError extends Error {
  override readonly name = "ClosedBeforeAnswerError";
  readonly code = "ECONNRESET";
}

interface AnswerHead {
  readonly status: number;
  readonly fields: ReadonlyMap<string, string>;
  /** How the body ends. */
  readonly framing: { kind: "length"; length: number } | { kind: "chunked" } | { kind: "close" };
  readonly keepAlive: boolean;
}

const statusLine = /^HTTP\/1\.([01]) (\d{3})(?: [^\r\n]*)?$/;
const fieldLine = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$/;

/** Parses an answer head (latin1 text, without its final CRLF CRLF). */
export function parseAnswerHead(text: string): AnswerHead {
  const [first = "", ...lines] = text.split("\r\n");
  const status = statusLine.exec(first);
  if (!status)
    throw new MalformedAnswerError(`not an HTTP/1.x status line: ${JSON.stringify(first.slice(0, 80))}`);
  const fields = new Map<string, string>();
  for (const line of lines) {
    const field = fieldLine.exec(line);
    if (!field) throw new MalformedAnswerError(`malformed header line: ${JSON.stringify(line.slice(0, 80))}`);
    const name = (field[1] ?? "").toLowerCase();
    const previous = fields.get(name);
    fields.set(name, previous === undefined ? (field[2] ?? "") : `${previous}, ${field[2] ?? ""}`);
  }
  const code = Number(status[2]);
  const connection = (fields.get("connection") ?? "").toLowerCase();
  const keepAlive = status[1] === "1" ? !/\bclose\b/.test(connection) : /\bkeep-alive\b/.test(connection);
  const transferEncoding = fields.get("transfer-encoding");
  const contentLength = fields.get("content-length");
  let framing: AnswerHead["framing"];
  if (code === 204 || code === 304 || (code >= 100 && code < 200)) framing = { kind: "length", length: 0 };
  else if (transferEncoding !== undefined) {
    if (!/(^|,)\s*chunked\s*$/i.test(transferEncoding)) framing = { kind: "close" };
    else framing = { kind: "chunked" };
  } else if (contentLength !== undefined) {
    if (!/^\d+$/.test(contentLength)) throw new MalformedAnswerError(`bad Content-Length ${contentLength}`);
    framing = { kind: "length", length: Number(contentLength) };
  } else framing = { kind: "close" };
  return { status: code, fields, framing, keepAlive: keepAlive && framing.kind !== "close" };
}

/**
 * Reads chunked coding from `text` (latin1). Returns the body and how much of the text it took, or
 * undefined while incomplete. Trailer fields are read and ignored.
 */
export function readChunked(text: string): { body: string; length: number } | undefined {
  let body = "";
  let at = 0;
  for (;;) {
    const lineEnd = text.indexOf("\r\n", at);
    if (lineEnd === -1) return undefined;
    const sizeText = (text.slice(at, lineEnd).split(";")[0] ?? "").trim();
    if (!/^[0-9a-fA-F]{1,8}$/.test(sizeText))
      throw new MalformedAnswerError(`bad chunk size ${JSON.stringify(sizeText)}`);
    const size = parseInt(sizeText, 16);
    at = lineEnd + 2;
    if (size === 0) {
      const end = text.indexOf("\r\n\r\n", at - 2);
      return end === -1 ? undefined : { body, length: end + 4 };
    }
    if (body.length + size > maxAnswerBytes) {
      throw new AnswerTooLargeError(`answer longer than ${maxAnswerBytes} bytes; a pong is 4`);
    }
    if (text.length < at + size + 2) return undefined;
    body += text.slice(at, at + size);
    at += size + 2;
  }
}

/** Connections to one ponger URL, presenting and trusting what `material` holds; one kept idle. */
export class PingClient {
  private readonly url: URL;
  /** Parsed once for every connection of this client (the keys and certificates do not change). */
  private readonly secureContext: SecureContext | undefined;
  private idle: Socket | undefined;
  private readonly open = new Set<Socket>();

  constructor(url: URL, material: TlsMaterial | undefined) {
    this.url = url;
    this.secureContext =
      url.protocol === "https:"
        ? tls.createSecureContext({
            ...(material?.trustBundlePem !== undefined ? { ca: material.trustBundlePem } : {}),
            ...(material?.certificatePem !== undefined ? { cert: material.certificatePem } : {}),
            ...(material?.privateKeyPem !== undefined ? { key: material.privateKeyPem } : {}),
          })
        : undefined;
  }

  /**
   * Sends GET on an idle connection or a new one. Rejects when the deadline passes (a TimeoutError),
   * when the connection or TLS fails, or when the answer is malformed or longer than maxAnswerBytes.
   * `closeConnection` asks for the connection to be closed after the answer.
   */
  async send(options: {
    readonly timeoutMs: number;
    readonly closeConnection: boolean;
  }): Promise<PingAnswer> {
    const deadline = Date.now() + options.timeoutMs;
    const reused = this.idle;
    this.idle = undefined;
    if (reused) {
      try {
        return await this.exchange(reused, { ...options, deadline });
      } catch (error) {
        // A kept connection the ponger closed as this ping was sent: the GET is sent again, once, on a
        // new connection (as HTTP clients do for idempotent requests).
        if (!(error instanceof ClosedBeforeAnswerError)) throw error;
      }
    }
    return this.exchange(this.connect(), { ...options, deadline });
  }

  /** Closes every connection, idle or in use. */
  destroy(): void {
    for (const socket of this.open) socket.destroy();
    this.idle = undefined;
  }

  private connect(): Socket {
    const host = this.url.hostname.replace(/^\[|\]$/g, "");
    const https = this.url.protocol === "https:";
    const port = Number(this.url.port || (https ? 443 : 80));
    const socket = https
      ? tls.connect({
          host,
          port,
          ...(net.isIP(host) === 0 ? { servername: host } : {}),
          ...(this.secureContext ? { secureContext: this.secureContext } : {}),
        })
      : net.connect({ host, port });
    socket.setNoDelay(true);
    this.open.add(socket);
    socket.once("close", () => {
      this.open.delete(socket);
      if (this.idle === socket) this.idle = undefined;
    });
    // An idle connection the ponger closes (idle timeout, shutdown) is dropped; errors are the
    // exchange's to report, or nobody's while idle.
    socket.on("error", () => undefined);
    socket.on("end", () => socket.destroy());
    return socket;
  }

  private exchange(
    socket: Socket,
    options: { readonly timeoutMs: number; readonly closeConnection: boolean; readonly deadline: number },
  ): Promise<PingAnswer> {
    const { url } = this;
    return new Promise((resolve, reject) => {
      let received = "";
      let head: AnswerHead | undefined;
      let bodyStart = 0;
      const finish = (error: Error | undefined, answer?: PingAnswer, keep = false) => {
        clearTimeout(timer);
        socket.off("data", onData);
        socket.off("error", onError);
        socket.off("close", onClose);
        if (keep && !socket.destroyed && this.idle === undefined) this.idle = socket;
        else if (!keep) socket.destroy();
        else socket.end();
        if (error) reject(error);
        else if (answer) resolve(answer);
      };
      const answer = (body: string): PingAnswer => {
        const fields = head?.fields;
        const pod = fields?.get(podHeader);
        return {
          status: head?.status ?? 0,
          body: Buffer.from(body, "latin1").toString("utf8"),
          pod: pod !== undefined && pod !== "" ? pod : undefined,
          certificateRefused: fields?.get(refusedHeader) === "client-certificate",
        };
      };
      /** Reads what has arrived; true once the answer is complete. */
      const progress = (ended: boolean): boolean => {
        while (head === undefined || (head.status >= 100 && head.status < 200)) {
          if (head !== undefined) {
            // An interim answer (100 Continue, 103 Early Hints): the real one follows.
            received = received.slice(bodyStart);
            head = undefined;
          }
          const end = received.indexOf("\r\n\r\n");
          if (end === -1) {
            if (received.length > maxHeadBytes) throw new MalformedAnswerError("answer head too long");
            if (ended && received === "")
              throw new ClosedBeforeAnswerError("the connection closed before an answer");
            if (ended)
              throw new MalformedAnswerError("the connection closed in the middle of the answer head");
            return false;
          }
          head = parseAnswerHead(received.slice(0, end));
          bodyStart = end + 4;
        }
        const rest = received.slice(bodyStart);
        const { framing } = head;
        if (framing.kind === "length") {
          if (framing.length > maxAnswerBytes) {
            throw new AnswerTooLargeError(`answer longer than ${maxAnswerBytes} bytes; a pong is 4`);
          }
          if (rest.length < framing.length) {
            if (ended) throw new MalformedAnswerError("the connection closed in the middle of the answer");
            return false;
          }
          const keep = !options.closeConnection && head.keepAlive && rest.length === framing.length;
          finish(undefined, answer(rest.slice(0, framing.length)), keep);
          return true;
        }
        if (framing.kind === "chunked") {
          const chunked = readChunked(rest);
          if (chunked === undefined) {
            if (ended) throw new MalformedAnswerError("the connection closed in the middle of the answer");
            return false;
          }
          const keep = !options.closeConnection && head.keepAlive && rest.length === chunked.length;
          finish(undefined, answer(chunked.body), keep);
          return true;
        }
        if (rest.length > maxAnswerBytes) {
          throw new AnswerTooLargeError(`answer longer than ${maxAnswerBytes} bytes; a pong is 4`);
        }
        if (!ended) return false;
        finish(undefined, answer(rest));
        return true;
      };
      const step = (ended: boolean) => {
        try {
          progress(ended);
        } catch (error) {
          finish(error as Error);
        }
      };
      const onData = (chunk: Buffer) => {
        received += chunk.toString("latin1");
        step(false);
      };
      const onError = (error: Error) => finish(error);
      const onClose = () => step(true);
      const timer = setTimeout(
        () => finish(new PingTimeoutError(`no answer within ${options.timeoutMs} ms`)),
        Math.max(0, options.deadline - Date.now()),
      );
      socket.on("data", onData);
      socket.on("error", onError);
      socket.on("close", onClose);
      const authority = url.port === "" ? url.hostname : `${url.hostname}:${url.port}`;
      socket.write(
        `GET ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${authority}\r\n` +
          `${options.closeConnection ? "connection: close\r\n" : ""}\r\n`,
        "latin1",
      );
    });
  }
}
