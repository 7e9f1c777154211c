/**
 * Why a ping failed, in a few words a person can act on and a label for metrics. An error may wrap
 * the socket's (an abort wraps its reason), so codes are looked for along the `cause` chain.
 */

export type FailureReason = "timeout" | "tls" | "connection" | "http_status" | "bad_body";

export interface PingFailure {
  readonly reason: FailureReason;
  readonly message: string;
  readonly code?: string | undefined;
}

function codesOf(error: unknown): { codes: string[]; names: string[]; messages: string[] } {
  const codes: string[] = [];
  const names: string[] = [];
  const messages: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string") codes.push(code);
    names.push(current.name);
    messages.push(current.message);
    current = current.cause;
  }
  return { codes, names, messages };
}

const timeoutCodes = new Set([
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "ETIMEDOUT",
]);
const tlsCode = /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_|HOSTNAME|ALTNAME/;

export function classifyError(error: unknown, timeoutMs: number): PingFailure {
  const { codes, names, messages } = codesOf(error);
  const code = codes.find((c) => tlsCode.test(c)) ?? codes.find((c) => !c.startsWith("UND_ERR_")) ?? codes[0];
  const detail = messages.filter((m) => m !== "").join(": ") || String(error);
  if (names.includes("AnswerTooLargeError") || names.includes("MalformedAnswerError")) {
    return { reason: "bad_body", message: detail, code };
  }
  if (names.includes("TimeoutError") || codes.some((c) => timeoutCodes.has(c))) {
    return { reason: "timeout", message: `no answer within ${timeoutMs} ms`, code };
  }
  if (codes.some((c) => tlsCode.test(c)) || messages.some((m) => /alert|certificate|ssl|tls/i.test(m))) {
    return { reason: "tls", message: `TLS error${code ? ` ${code}` : ""}: ${detail}`, code };
  }
  return { reason: "connection", message: `connection failed${code ? ` (${code})` : ""}: ${detail}`, code };
}
