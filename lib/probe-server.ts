/**
 * The plain-HTTP side port every program here serves: /metrics for Prometheus, /healthz (the process
 * is alive), /readyz (it should get traffic) and, where the program has one, /status as JSON.
 *
 * Four fixed GET routes on node:http: a web framework here cost the workloads ~15 MiB of resident
 * memory per pod for nothing they use (measured by `npm run bench -- workloads`).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { errorMessage, type Logger } from "./line-logger.ts";
import { closeGracefully, listen, pathOf } from "./http-server.ts";

const http = process.getBuiltinModule("node:http");

export type Readiness = { ready: true } | { ready: false; reason: string };

export interface ProbeServerOptions {
  readonly address: string;
  readonly port: number;
  /** A prom-client Registry, or anything else that renders the text format. */
  readonly registry: { readonly contentType: string; metrics(): string | Promise<string> };
  readonly logger: Logger;
  readonly readiness: () => Readiness;
  readonly status?: () => unknown;
}

export interface ProbeServer {
  /** http://address:port, with the port actually bound (the configured one may be 0). */
  readonly url: string;
  close(): Promise<void>;
}

function send(response: ServerResponse, status: number, contentType: string, body: string): void {
  response.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(body) });
  response.end(body);
}

const text = "text/plain; charset=utf-8";

export async function startProbeServer(options: ProbeServerOptions): Promise<ProbeServer> {
  const { registry, readiness, status, logger } = options;

  async function route(request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (request.method !== "GET" && request.method !== "HEAD") {
      response.setHeader("allow", "GET, HEAD");
      send(response, 405, text, "method not allowed: use GET\n");
      return;
    }
    const path = pathOf(request.url);
    if (path === "/healthz") {
      send(response, 200, text, "ok");
    } else if (path === "/readyz") {
      const state = readiness();
      if (state.ready) send(response, 200, text, "ok");
      else send(response, 503, text, `not ready: ${state.reason}`);
    } else if (path === "/metrics") {
      send(response, 200, registry.contentType, await registry.metrics());
    } else if (path === "/status" && status) {
      send(response, 200, "application/json; charset=utf-8", JSON.stringify(status()));
    } else {
      send(
        response,
        404,
        text,
        `not found; this port serves /healthz /readyz /metrics${status ? " /status" : ""}\n`,
      );
    }
  }

  const server = http.createServer((request, response) => {
    route(request, response).catch((error: unknown) => {
      logger.error({ path: pathOf(request.url), error: errorMessage(error) }, "Probe request failed");
      if (!response.headersSent) send(response, 500, text, "internal error\n");
      else response.destroy();
    });
  });
  const url = await listen(server, options.address, options.port, "http");
  logger.info({ url }, "Metrics and probes listening");
  return {
    url,
    close: () => closeGracefully(server),
  };
}
