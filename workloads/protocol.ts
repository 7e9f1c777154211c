/** What the pinger and ponger agree on besides HTTP itself. */

/** Response header in which a ponger names its pod, so pingers can count answers per pod. */
export const podHeader = "x-ponger-pod";

/** Response header in which a ponger names its node (when it knows it), so a ping's path shows. */
export const nodeHeader = "x-ponger-node";

export const pingPath = "/ping";
export const pongBody = "pong";

/** Response header on a ping a fire drill aborted, so a pinger can tell a drill from a real error. */
export const drillHeader = "x-pingpong-drill";
