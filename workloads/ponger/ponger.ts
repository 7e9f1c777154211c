/**
 * The ponger: answers `GET /ping` with `pong` over HTTPS (mutual TLS when a client CA is configured)
 * or plain HTTP, names its pod in a response header, counts what it receives, and swaps in new
 * certificates without a restart.
 */
import type { Server as TlsServer } from "node:tls";
import Fastify, { type FastifyInstance } from "fastify";
import { collectDefaultMetrics, Counter, Registry } from "prom-client";
import type { Logger } from "../../lib/logger.ts";
import { type ProbeServer, startProbeServer } from "../../lib/probe-server.ts";
import { pingPath, podHeader, pongBody } from "../protocol.ts";
import { describeMaterial, type TlsMaterial } from "../tls-files.ts";
import { TlsReloader } from "../tls-reloader.ts";
import type { PongerConfig } from "./config.ts";

export interface Ponger {
  /** e.g. https://127.0.0.1:8443/ping, with the port actually bound. */
  readonly pingUrl: string;
  readonly probes: ProbeServer;
  close(): Promise<void>;
}

const notPing = ["DELETE", "PATCH", "POST", "PUT", "OPTIONS"] as const;

function tlsOptions(config: PongerConfig, material: TlsMaterial) {
  const mutual = config.service.clientCA !== undefined;
  return {
    key: material.privateKeyPem ?? "",
    cert: material.certificatePem ?? "",
    ...(mutual ? { ca: material.trustBundlePem ?? "" } : {}),
  };
}

export async function startPonger(config: PongerConfig, logger: Logger): Promise<Ponger> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const received = new Counter({
    name: "ping_requests_received_total",
    help: "Requests received on /ping, valid or not.",
    registers: [registry],
  });
  const failures = new Counter({
    name: "ping_failures_total",
    help: "Requests on /ping that were not a valid ping, by reason.",
    labelNames: ["reason"] as const,
    registers: [registry],
  });
  const tlsHandshakeFailures = new Counter({
    name: "ponger_tls_handshake_failures_total",
    help: "TLS handshakes refused, e.g. a client without a certificate from a trusted CA.",
    registers: [registry],
  });

  const https = config.service.protocol === "https";
  const reloader = https
    ? new TlsReloader({
        paths: {
          certificate: config.service.tlsCertificate,
          privateKey: config.service.tlsPrivateKey,
          trustBundle: config.service.clientCA,
        },
        logger,
        apply: (material) => {
          // New connections get the new context; established keep-alive connections finish on theirs.
          (app.server as unknown as TlsServer).setSecureContext(tlsOptions(config, material));
        },
      })
    : undefined;
  const initial = reloader ? await reloader.start() : undefined;

  const app: FastifyInstance = initial
    ? Fastify({
        logger: false,
        https: {
          ...tlsOptions(config, initial),
          requestCert: config.service.clientCA !== undefined,
          rejectUnauthorized: config.service.clientCA !== undefined,
          minVersion: "TLSv1.2",
        },
      })
    : Fastify({ logger: false });

  app.server.on("tlsClientError", (error: Error & { code?: string }, socket: { remoteAddress?: string }) => {
    tlsHandshakeFailures.inc();
    logger.warn(
      { code: error.code, error: error.message, remote: socket.remoteAddress },
      "TLS handshake refused",
    );
  });

  app.get(pingPath, (request, reply) => {
    received.inc();
    logger.info({ remote: request.socket.remoteAddress }, "Received GET /ping");
    return reply.header(podHeader, config.podName).type("text/plain").send(pongBody);
  });
  app.route({
    method: [...notPing],
    url: pingPath,
    handler: (request, reply) => {
      received.inc();
      failures.inc({ reason: "method_not_allowed" });
      logger.warn(
        { remote: request.socket.remoteAddress },
        `Received ${request.method} /ping: only GET is a ping`,
      );
      return reply
        .code(405)
        .header("allow", "GET, HEAD")
        .type("text/plain")
        .send("method not allowed: use GET");
    },
  });

  let shuttingDown = false;
  await app.listen({ host: config.service.address, port: config.service.port });
  const bound = app.server.address();
  const port = typeof bound === "object" && bound ? bound.port : config.service.port;
  const host = config.service.address.includes(":") ? `[${config.service.address}]` : config.service.address;
  const pingUrl = `${config.service.protocol}://${host}:${port}/ping`;
  logger.info(
    { url: pingUrl, mutualTls: config.service.clientCA !== undefined, pod: config.podName },
    "Ponger listening",
  );

  const probes = await startProbeServer({
    address: config.metrics.address,
    port: config.metrics.port,
    registry,
    logger,
    readiness: () => (shuttingDown ? { ready: false, reason: "shutting down" } : { ready: true }),
    status: () => ({
      pod: config.podName,
      protocol: config.service.protocol,
      mutualTls: config.service.clientCA !== undefined,
      tls: reloader?.current ? { ...describeMaterial(reloader.current), ...reloader.status } : null,
    }),
  });

  return {
    pingUrl,
    probes,
    close: async () => {
      shuttingDown = true;
      reloader?.stop();
      // fastify stops accepting, lets in-flight requests finish and closes idle keep-alive sockets.
      await app.close();
      await probes.close();
    },
  };
}
