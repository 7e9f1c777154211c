/**
 * Why a ping failed, in a few words a person can act on and a label for metrics, from the error undici
 * (or the TLS layer under it) gave. An error may wrap the socket's (an abort wraps its reason), so
 * codes are looked for along the `cause` chain.
 */

export type FailureReason = "timeout" | "tls" | "connection" | "http_status" | "bad_body";

export interface PingFailure {
  readonly reason: FailureReason;
  readonly message: string;
  readonly code?: string | undefined;
}

/** What the pinger knows about the ping beyond the error. */
export interface PingContext {
  readonly timeoutMs: number;
  /** The pinger presents a client certificate (mutual TLS). */
  readonly presentsCertificate: boolean;
}

interface ErrorChain {
  readonly codes: string[];
  readonly names: string[];
  readonly messages: string[];
  /** undici's SocketError says what its connection had carried. */
  readonly socket?: { bytesRead?: number; bytesWritten?: number } | undefined;
}

function chainOf(error: unknown): ErrorChain {
  const chain: ErrorChain & { socket?: ErrorChain["socket"] } = { codes: [], names: [], messages: [] };
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const { code, socket } = current as { code?: unknown; socket?: unknown };
    if (typeof code === "string") chain.codes.push(code);
    if (typeof socket === "object" && socket !== null) chain.socket ??= socket;
    chain.names.push(current.name);
    chain.messages.push(current.message);
    current = current.cause;
  }
  return chain;
}

const timeoutCodes = new Set([
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "ETIMEDOUT",
]);
/** Answers llhttp or undici refused: not a pong, whatever else they are. */
const badAnswerCodes = new Set([
  "UND_ERR_RES_EXCEEDED_MAX_SIZE",
  "UND_ERR_HEADERS_OVERFLOW",
  "UND_ERR_RES_CONTENT_LENGTH_MISMATCH",
  // undici 8.12 lets llhttp accept a status below 100, then refuses it with an internal assertion.
  "ERR_ASSERTION",
]);
const tlsCode = /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_|HOSTNAME|ALTNAME/;

/**
 * A connection the ponger closed right after the TLS handshake, before a byte of any answer, with
 * only this ping's request written on it: what a ponger does to a client certificate it refuses (the
 * handshake completes for the client before the ponger has checked the certificate).
 */
function refusedAfterHandshake(chain: ErrorChain, context: PingContext): boolean {
  return (
    context.presentsCertificate &&
    chain.codes.includes("UND_ERR_SOCKET") &&
    chain.socket?.bytesRead === 0 &&
    chain.socket.bytesWritten !== undefined &&
    chain.socket.bytesWritten > 0
  );
}

export function classifyError(error: unknown, context: PingContext): PingFailure {
  const chain = chainOf(error);
  const { codes, names, messages } = chain;
  const code =
    codes.find((c) => tlsCode.test(c)) ??
    codes.find((c) => !c.startsWith("UND_ERR_")) ??
    codes.find((c) => c !== "UND_ERR") ??
    codes[0];
  const detail = messages.filter((m) => m !== "").join(": ") || String(error);
  if (codes.some((c) => badAnswerCodes.has(c) || c.startsWith("HPE_")) || names.includes("HTTPParserError")) {
    return {
      reason: "bad_body",
      message: `not an answer to a ping (${code ?? "refused by the parser"}): ${detail}`,
      code,
    };
  }
  if (names.includes("TimeoutError") || codes.some((c) => timeoutCodes.has(c))) {
    return { reason: "timeout", message: `no answer within ${context.timeoutMs} ms`, code };
  }
  if (codes.some((c) => tlsCode.test(c)) || messages.some((m) => /alert|certificate|ssl|tls/i.test(m))) {
    return { reason: "tls", message: `TLS error${code ? ` ${code}` : ""}: ${detail}`, code };
  }
  if (refusedAfterHandshake(chain, context)) {
    return {
      reason: "tls",
      message:
        "the ponger closed the connection after the TLS handshake without answering: it refuses this pinger's client certificate (its log says why)",
      code,
    };
  }
  return { reason: "connection", message: `connection failed${code ? ` (${code})` : ""}: ${detail}`, code };
}
