/**
 * What the probe port every program here serves answers: /metrics for Prometheus, /healthz (the
 * process is alive), /readyz (it should get traffic) and, where the program has one, /status as JSON.
 * One function for both servers: the operator's on node:http (lib/probe-server.ts), the workloads' on
 * lib/http1.ts (workloads/probe-port.ts), which keeps node:http out of a ponger or pinger pod.
 */

export type Readiness = { ready: true } | { ready: false; reason: string };

export interface ProbeSources {
  readonly readiness: () => Readiness;
  readonly status?: () => unknown;
}

export interface ProbeReply {
  readonly status: 200 | 404 | 405 | 503;
  readonly contentType: string;
  readonly body: string;
  /** For 405: the methods this port answers. */
  readonly allow?: string;
}

const text = "text/plain; charset=utf-8";

/**
 * What the probe port answers to `method` on `path`. `metrics` renders the text format; it is called
 * only for /metrics.
 */
export function probeReply(
  method: string,
  path: string,
  sources: ProbeSources,
  metrics: { readonly contentType: string; render(): string },
): ProbeReply {
  if (method !== "GET" && method !== "HEAD") {
    return { status: 405, contentType: text, body: "method not allowed: use GET\n", allow: "GET, HEAD" };
  }
  switch (path) {
    case "/healthz":
      return { status: 200, contentType: text, body: "ok" };
    case "/readyz": {
      const state = sources.readiness();
      return state.ready
        ? { status: 200, contentType: text, body: "ok" }
        : { status: 503, contentType: text, body: `not ready: ${state.reason}` };
    }
    case "/metrics":
      return { status: 200, contentType: metrics.contentType, body: metrics.render() };
    case "/status":
      if (sources.status) {
        return {
          status: 200,
          contentType: "application/json; charset=utf-8",
          body: JSON.stringify(sources.status()),
        };
      }
  }
  return {
    status: 404,
    contentType: text,
    body: `not found; this port serves /healthz /readyz /metrics${sources.status ? " /status" : ""}\n`,
  };
}

export interface ProbeServer {
  /** http://address:port, with the port actually bound (the configured one may be 0). */
  readonly url: string;
  close(): Promise<void>;
}
