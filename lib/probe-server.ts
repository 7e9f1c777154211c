/**
 * The operator's probe port (/metrics /healthz /readyz, see lib/probe-routes.ts) on node:http, whose
 * async request handling suits prom-client's asynchronous rendering. The workloads serve the same
 * routes on lib/http1.ts (workloads/probe-port.ts).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { errorMessage, type Logger } from "./line-logger.ts";
import { closeGracefully, listen, pathOf } from "./http-server.ts";
import { type ProbeServer, type ProbeSources, probeReply } from "./probe-routes.ts";

export type { ProbeServer, Readiness } from "./probe-routes.ts";

const http = process.getBuiltinModule("node:http");

export interface ProbeServerOptions extends ProbeSources {
  readonly address: string;
  readonly port: number;
  /** A prom-client Registry, or anything else that renders the text format. */
  readonly registry: { readonly contentType: string; metrics(): string | Promise<string> };
  readonly logger: Logger;
}

/** The probe port on node:http, for a registry that renders asynchronously (prom-client's). */
export async function startProbeServer(options: ProbeServerOptions): Promise<ProbeServer> {
  const { registry, logger } = options;

  async function route(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = pathOf(request.url);
    const rendered = path === "/metrics" ? await registry.metrics() : "";
    const reply = probeReply(request.method ?? "GET", path, options, {
      contentType: registry.contentType,
      render: () => rendered,
    });
    if (reply.allow) response.setHeader("allow", reply.allow);
    response.writeHead(reply.status, {
      "content-type": reply.contentType,
      "content-length": Buffer.byteLength(reply.body),
    });
    response.end(reply.body);
  }

  const server = http.createServer((request, response) => {
    route(request, response).catch((error: unknown) => {
      logger.error({ path: pathOf(request.url), error: errorMessage(error) }, "Probe request failed");
      if (!response.headersSent) {
        response.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
        response.end("internal error\n");
      } else response.destroy();
    });
  });
  const url = await listen(server, options.address, options.port, "http");
  logger.info({ url }, "Metrics and probes listening");
  return {
    url,
    close: () => closeGracefully(server),
  };
}
