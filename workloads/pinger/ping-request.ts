/**
 * One ping on node:http(s): a GET with a deadline that covers everything (connecting, the TLS
 * handshake, the answer), a cap on how much of the answer is read, and the ponger pod's name.
 *
 * node:http's keep-alive Agent instead of undici: the pinger sends one small request a second, and
 * loading undici cost a pinger pod about 20 MiB of resident memory (`npm run bench -- workloads`).
 */
import type { Agent as HttpAgent, IncomingMessage } from "node:http";
import type { Agent as HttpsAgent } from "node:https";
import type { TlsMaterial } from "../tls-files.ts";
import { podHeader, refusedHeader } from "../protocol.ts";

const http = process.getBuiltinModule("node:http");
const https = process.getBuiltinModule("node:https");

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

export class AnswerTooLargeError extends Error {
  override readonly name = "AnswerTooLargeError";
  readonly code = "ANSWER_TOO_LARGE";
}

export type PingAgent = HttpAgent | HttpsAgent;

/** Keep-alive connections for `url`, trusting and presenting what `material` holds. */
export function pingAgent(url: URL, material: TlsMaterial | undefined): PingAgent {
  if (url.protocol === "http:") return new http.Agent({ keepAlive: true });
  return new https.Agent({
    keepAlive: true,
    ...(material?.trustBundlePem !== undefined ? { ca: material.trustBundlePem } : {}),
    ...(material?.certificatePem !== undefined ? { cert: material.certificatePem } : {}),
    ...(material?.privateKeyPem !== undefined ? { key: material.privateKeyPem } : {}),
  });
}

/**
 * Sends GET `url` on `agent`. Rejects when the deadline passes (a TimeoutError cause), when the
 * connection or TLS fails, or when the answer is longer than maxAnswerBytes. `closeConnection` asks
 * for the connection to be closed after the answer.
 */
export function sendPing(
  url: URL,
  agent: PingAgent,
  options: { readonly timeoutMs: number; readonly closeConnection: boolean },
): Promise<PingAnswer> {
  const send = url.protocol === "https:" ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const request = send(
      url,
      {
        method: "GET",
        agent,
        signal: AbortSignal.timeout(options.timeoutMs),
        headers: options.closeConnection ? { connection: "close" } : {},
      },
      (response: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let length = 0;
        response.on("data", (chunk: Buffer) => {
          length += chunk.length;
          if (length > maxAnswerBytes) {
            const error = new AnswerTooLargeError(`answer longer than ${maxAnswerBytes} bytes; a pong is 4`);
            reject(error);
            request.destroy(error);
            return;
          }
          chunks.push(chunk);
        });
        response.on("end", () => {
          const pod = response.headers[podHeader];
          resolve({
            status: response.statusCode ?? 0,
            body: Buffer.concat(chunks).toString("utf8"),
            pod: typeof pod === "string" && pod !== "" ? pod : undefined,
            certificateRefused: response.headers[refusedHeader] === "client-certificate",
          });
        });
        response.on("error", reject);
      },
    );
    request.on("error", reject);
    request.end();
  });
}
