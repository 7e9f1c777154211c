/** What the pinger and ponger agree on besides HTTP itself. */

/** Response header in which a ponger names its pod, so pingers can count answers per pod. */
export const podHeader = "x-ponger-pod";

export const pingPath = "/ping";
export const pongBody = "pong";

/**
 * Set on the 403 a ponger answers over a connection whose client certificate it refused; the body
 * says why. (The TLS handshake itself completes, so the refusal can carry its reason: a bare TLS
 * alert reaches a client as "other side closed".)
 */
export const refusedHeader = "x-pingpong-refused";
