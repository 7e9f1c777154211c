/**
 * One ping: a GET to the ponger with undici, over TLS or mutual TLS. The connection pool is built
 * from the TLS material the pinger has loaded; every limit is undici's own setting:
 *
 * - a deadline over everything (connecting, the handshake, the answer): an AbortSignal;
 * - connect, header and body timeouts no longer than that deadline;
 * - at most maxAnswerBytes of a body and 16 KiB of a head (a pong is four bytes);
 * - a connection carries pingsPerConnection pings, the last one asking to close it, so a Service
 *   spreads a pinger's pings over every ponger instead of pinning it to one.
 *
 * Anything llhttp or undici refuses (bad framing, bad status lines, oversized heads or bodies) rejects
 * the ping with their error; failure.ts says what it means.
 */
import { isIP } from "node:net";
import { Pool } from "undici";
import { nodeHeader, podHeader } from "../protocol.ts";
import type { TlsMaterial } from "../tls-files.ts";

export interface PingAnswer {
  readonly status: number;
  readonly body: string;
  /** The `x-ponger-pod` header, when the answer had one. */
  readonly pod: string | undefined;
  /** The `x-ponger-node` header, when the answer had one. */
  readonly node: string | undefined;
}

/** A pong is four bytes; a longer answer is not one, and is not read past this. */
export const maxAnswerBytes = 4096;
/** Larger answer heads are not a ponger's answer to a ping. */
export const maxAnswerHeadBytes = 16 * 1024;
/**
 * Pings sent over one connection before it is closed (gracefully: the last one asks for
 * `Connection: close`) and the next ping opens another. A Service balances connections, not
 * requests: a pinger that kept one connection would ping one ponger forever, however many the pair
 * scales to.
 */
export const pingsPerConnection = 10;
/** Pings in flight at once, each on its own connection, when one is slow to answer. */
const maxConnections = 4;

/** Connections to one ponger URL, presenting and trusting what `material` holds. */
export function pongerPool(url: URL, material: TlsMaterial | undefined, timeoutMs: number): Pool {
  const host = url.hostname.replace(/^\[|\]$/g, "");
  return new Pool(url.origin, {
    connections: maxConnections,
    allowH2: false,
    maxRequestsPerClient: pingsPerConnection,
    maxResponseSize: maxAnswerBytes,
    maxHeaderSize: maxAnswerHeadBytes,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    connect: {
      timeout: timeoutMs,
      ...(isIP(host) === 0 ? { servername: host } : {}),
      ...(material?.trustBundlePem !== undefined ? { ca: material.trustBundlePem } : {}),
      ...(material?.certificatePem !== undefined ? { cert: material.certificatePem } : {}),
      ...(material?.privateKeyPem !== undefined ? { key: material.privateKeyPem } : {}),
    },
  });
}

/**
 * Sends one GET and reads the answer. Rejects when the deadline passes (the signal's TimeoutError),
 * when the connection or TLS fails, or when the answer is malformed or too large.
 *
 * undici acts on an abort only once the request is on a connection; while it waits for one (a ponger
 * that accepts but never finishes the handshake) the ping still ends at its deadline here, and the
 * request is left to undici's connect timeout.
 */
export async function sendPing(pool: Pool, url: URL, timeoutMs: number): Promise<PingAnswer> {
  const signal = AbortSignal.timeout(timeoutMs);
  const answer = (async () => {
    const { statusCode, headers, body } = await pool.request({
      path: `${url.pathname}${url.search}`,
      method: "GET",
      signal,
    });
    const text = await body.text();
    const pod = headers[podHeader];
    const node = headers[nodeHeader];
    return {
      status: statusCode,
      body: text,
      pod: typeof pod === "string" && pod !== "" ? pod : undefined,
      node: typeof node === "string" && node !== "" ? node : undefined,
    };
  })();
  const deadline = new Promise<never>((_resolve, reject) => {
    signal.addEventListener("abort", () => reject(signal.reason as Error), { once: true });
  });
  // Whichever loses is settled later by nobody's await.
  answer.catch(() => undefined);
  deadline.catch(() => undefined);
  return Promise.race([answer, deadline]);
}
