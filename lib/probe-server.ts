/**
 * The probe port every program here serves, plain HTTP on fastify (lib/http-server.ts): /metrics for
 * Prometheus, /healthz (the process is alive), /readyz (it should get traffic) and, where the program
 * has one, /status as JSON. The operator and both workloads serve it the same way.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Registry } from "prom-client";
import { createHttpServer, listenOn, type ServerLimits } from "./http-server.ts";
import type { Logger } from "./logger.ts";

export type Readiness = { ready: true } | { ready: false; reason: string };

export interface ProbeServerOptions {
  readonly address: string;
  readonly port: number;
  readonly registry: Registry;
  readonly logger: Logger;
  readonly readiness: () => Readiness;
  readonly status?: () => unknown;
  readonly limits?: ServerLimits;
}

export interface ProbeServer {
  /** http://address:port, with the port actually bound (the configured one may be 0). */
  readonly url: string;
  close(): Promise<void>;
}

const text = "text/plain; charset=utf-8";

/**
 * Only GET and HEAD are served, on every path: anything else is answered 405 before its body is read,
 * and the connection is closed.
 */
export function refuseOtherMethods(
  request: FastifyRequest,
  reply: FastifyReply,
  done: () => void,
  onRefused?: (request: FastifyRequest) => void,
): void {
  if (request.method === "GET" || request.method === "HEAD") {
    done();
    return;
  }
  onRefused?.(request);
  void reply
    .code(405)
    .header("allow", "GET, HEAD")
    .header("connection", "close")
    .type(text)
    .send("method not allowed: use GET\n");
}

export async function startProbeServer(options: ProbeServerOptions): Promise<ProbeServer> {
  const { registry, logger, status } = options;
  const app = createHttpServer({ logger, ...(options.limits ? { limits: options.limits } : {}) });
  app.addHook("onRequest", (request, reply, done) => {
    refuseOtherMethods(request, reply, done);
  });
  app.get("/healthz", (_request, reply) => reply.type(text).send("ok"));
  app.get("/readyz", (_request, reply) => {
    const state = options.readiness();
    return state.ready
      ? reply.type(text).send("ok")
      : reply.code(503).type(text).send(`not ready: ${state.reason}`);
  });
  app.get("/metrics", async (_request, reply) =>
    reply.type(registry.contentType).send(await registry.metrics()),
  );
  if (status) app.get("/status", (_request, reply) => reply.send(status()));
  app.setNotFoundHandler((_request, reply) =>
    reply
      .code(404)
      .type(text)
      .send(`not found; this port serves /healthz /readyz /metrics${status ? " /status" : ""}\n`),
  );
  const url = await listenOn(app, options.address, options.port);
  logger.info({ url }, "Metrics and probes listening");
  return { url, close: () => app.close() };
}
