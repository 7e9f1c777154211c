/**
 * The bare pinger the pinger is measured against: an undici Pool pinging over mutual TLS every
 * interval with the pinger's settings, a pino line per ping and per pong, prom-client's default
 * metrics and a fastify port for /metrics, and none of the pinger's code.
 *
 *   node bare-pinger.cjs URL CERT KEY CA METRICS_PORT INTERVAL_MS
 */
import { readFileSync } from "node:fs";
import Fastify from "fastify";
import { collectDefaultMetrics, Counter, Registry } from "prom-client";
import { Pool } from "undici";
import { createLogger } from "../../lib/logger.ts";

const [url = "", cert = "", key = "", ca = "", metricsPort = "0", interval = "1000"] = process.argv.slice(2);
// The programs' pino settings (an asynchronous destination, the same redaction).
const logger = createLogger("pinger");
const registry = new Registry();
collectDefaultMetrics({ register: registry });
const sent = new Counter({ name: "ping_requests_sent_total", help: "Pings sent.", registers: [registry] });
const target = new URL(url);
const pool = new Pool(target.origin, {
  connections: 4,
  allowH2: false,
  maxRequestsPerClient: 10,
  maxResponseSize: 4096,
  headersTimeout: 2000,
  bodyTimeout: 2000,
  connect: { timeout: 2000, cert: readFileSync(cert), key: readFileSync(key), ca: readFileSync(ca) },
});
setInterval(() => {
  sent.inc();
  logger.info({ url }, "Sent ping");
  pool
    .request({ path: target.pathname, method: "GET", signal: AbortSignal.timeout(2000) })
    .then(async ({ body }) => logger.info({ body: await body.text() }, "Got pong"))
    .catch((error: unknown) => logger.warn({ err: error }, "Ping failed"));
}, Number(interval));
const metrics = Fastify();
metrics.get("/metrics", async (_request, reply) =>
  reply.type(registry.contentType).send(await registry.metrics()),
);
metrics.get("/readyz", () => "ok");
void metrics.listen({ host: "127.0.0.1", port: Number(metricsPort) });
