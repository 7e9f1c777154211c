/**
 * The bare "pong" server the ponger is measured against: fastify over mutual TLS, pino, prom-client's
 * default metrics and a second fastify port for /metrics, with the ponger's settings and none of its
 * code. `--log` writes the ponger's line per request with pino; without it, nothing per request.
 *
 *   node bare-ponger.cjs CERT KEY CA PORT METRICS_PORT [--log]
 */
import { readFileSync } from "node:fs";
import Fastify from "fastify";
import { createLogger } from "../../lib/logger.ts";
import { collectDefaultMetrics, Registry } from "prom-client";
import { defaultServerLimits as limits } from "../../lib/http-server.ts";

const [cert = "", key = "", ca = "", port = "0", metricsPort = "0", log] = process.argv.slice(2);
// The programs' pino settings (an asynchronous destination, the same redaction).
const logger = createLogger("ponger");
const registry = new Registry();
collectDefaultMetrics({ register: registry });
const server = {
  headersTimeout: limits.headersTimeoutMs,
  requestTimeout: limits.requestTimeoutMs,
  keepAliveTimeout: limits.keepAliveTimeoutMs,
  connectionsCheckingInterval: limits.timeoutCheckIntervalMs,
  maxHeaderSize: limits.maxHeaderBytes,
};
const app = Fastify({
  https: {
    cert: readFileSync(cert),
    key: readFileSync(key),
    ca: readFileSync(ca),
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: "TLSv1.2",
    handshakeTimeout: limits.handshakeTimeoutMs,
    ...server,
  },
  connectionTimeout: limits.idleTimeoutMs,
  keepAliveTimeout: limits.keepAliveTimeoutMs,
  requestTimeout: limits.requestTimeoutMs,
});
app.get("/ping", (request, reply) => {
  if (log === "--log") logger.info({ remote: request.socket.remoteAddress }, "Received GET /ping");
  return reply.header("x-ponger-pod", "bare").type("text/plain").send("pong");
});
const metrics = Fastify({ http: server, connectionTimeout: limits.idleTimeoutMs });
metrics.get("/metrics", async (_request, reply) =>
  reply.type(registry.contentType).send(await registry.metrics()),
);
metrics.get("/readyz", () => "ok");
void Promise.all([
  app.listen({ host: "127.0.0.1", port: Number(port) }),
  metrics.listen({ host: "127.0.0.1", port: Number(metricsPort) }),
]);
