/**
 * The workloads' probe port: /metrics /healthz /readyz /status (lib/probe-routes.ts) on lib/http1.ts
 * over plain TCP. node:http would load its client, agent and server modules into every ponger and
 * pinger pod for four GET routes: 2 MiB of idle RSS each (`npm run bench -- workloads`).
 */
import type { Socket } from "node:net";
import { type Answer, serveConnection } from "../lib/http1.ts";
import { closeServing, listen, pathOf } from "../lib/http-server.ts";
import type { Logger } from "../lib/line-logger.ts";
import { type ProbeServer, type ProbeSources, probeReply } from "../lib/probe-routes.ts";

const { createServer } = process.getBuiltinModule("node:net");

export interface ProbePortOptions extends ProbeSources {
  readonly address: string;
  readonly port: number;
  /** The workloads' registry renders synchronously (workloads/metrics.ts). */
  readonly registry: { readonly contentType: string; metrics(): string };
  readonly logger: Logger;
}

/** http1.ts writes answers as latin1: a body with other characters is sent as its UTF-8 bytes. */
const asBytes = (body: string) =>
  // eslint-disable-next-line no-control-regex -- the ASCII range is what passes through unchanged
  /^[\x00-\x7f]*$/.test(body) ? body : Buffer.from(body, "utf8").toString("latin1");

export async function startProbePort(options: ProbePortOptions): Promise<ProbeServer> {
  const { registry, logger } = options;
  const metrics = { contentType: registry.contentType, render: () => registry.metrics() };

  const connections = new Set<Socket>();
  const server = createServer((socket) => {
    connections.add(socket);
    socket.once("close", () => connections.delete(socket));
    serveConnection(socket, {
      maxHeadBytes: 16 * 1024,
      headTimeoutMs: 10_000,
      idleTimeoutMs: 120_000,
      onRequest: (head): Answer => {
        const reply = probeReply(head.method, pathOf(head.target), options, metrics);
        return {
          status: reply.status,
          headers: { "content-type": reply.contentType, ...(reply.allow ? { allow: reply.allow } : {}) },
          body: asBytes(reply.body),
          close: reply.status === 405,
        };
      },
    });
  });
  // A scraper or kubelet that floods the port is bounded like the ponger's own port.
  server.maxConnections = 64;
  const url = await listen(server, options.address, options.port, "http");
  logger.info({ url }, "Metrics and probes listening");
  return {
    url,
    close: () => closeServing(server, connections),
  };
}
