/**
 * The plain-HTTP side port every program here serves: /metrics for Prometheus, /healthz (the process
 * is alive), /readyz (it should get traffic) and, where the program has one, /status as JSON.
 */
import Fastify from "fastify";
import type { Registry } from "prom-client";
import type { Logger } from "./logger.ts";

export type Readiness = { ready: true } | { ready: false; reason: string };

export interface ProbeServerOptions {
  readonly address: string;
  readonly port: number;
  readonly registry: Registry;
  readonly logger: Logger;
  readonly readiness: () => Readiness;
  readonly status?: () => unknown;
}

export interface ProbeServer {
  /** http://address:port, with the port actually bound (the configured one may be 0). */
  readonly url: string;
  close(): Promise<void>;
}

export async function startProbeServer(options: ProbeServerOptions): Promise<ProbeServer> {
  const app = Fastify({ logger: false });
  app.get("/healthz", (_request, reply) => reply.type("text/plain").send("ok"));
  app.get("/readyz", (_request, reply) => {
    const state = options.readiness();
    return state.ready
      ? reply.type("text/plain").send("ok")
      : reply.code(503).type("text/plain").send(`not ready: ${state.reason}`);
  });
  app.get("/metrics", async (_request, reply) =>
    reply.type(options.registry.contentType).send(await options.registry.metrics()),
  );
  const { status } = options;
  if (status) app.get("/status", (_request, reply) => reply.send(status()));

  await app.listen({ host: options.address, port: options.port });
  const bound = app.server.address();
  const port = typeof bound === "object" && bound ? bound.port : options.port;
  const url = `http://${options.address.includes(":") ? `[${options.address}]` : options.address}:${port}`;
  options.logger.info({ url }, "Metrics and probes listening");
  return { url, close: () => app.close() };
}
