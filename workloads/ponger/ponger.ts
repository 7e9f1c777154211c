/**
 * The ponger: fastify answering `GET /ping` with `pong` over HTTPS (mutual TLS when a client CA is
 * configured) or plain HTTP, naming its pod in a response header, counting what it receives, and
 * swapping in new certificates without a restart.
 */
import { setTimeout } from "node:timers/promises";
import type { Server as TlsServer, TLSSocket } from "node:tls";
import type { FastifyRequest } from "fastify";
import { collectDefaultMetrics, Counter, Registry } from "prom-client";
import { createHttpServer, defaultServerLimits, listenOn, type ServerLimits } from "../../lib/http-server.ts";
import type { Logger } from "../../lib/logger.ts";
import { type ProbeServer, refuseOtherMethods, startProbeServer } from "../../lib/probe-server.ts";
import { PeerLimiter } from "../peer-limiter.ts";
import { drillHeader, nodeHeader, pingPath, podHeader, pongBody } from "../protocol.ts";
import { describeMaterial, type TlsMaterial } from "../tls-files.ts";
import { TlsReloader } from "../tls-reloader.ts";
import type { PongerConfig } from "./config.ts";
import { DrillReader } from "./drill.ts";

/** What a certificate verification error means, for the log. */
const refusalReasons: Readonly<Record<string, string>> = {
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "it is not signed by a CA this ponger trusts",
  UNABLE_TO_GET_ISSUER_CERT: "it is not signed by a CA this ponger trusts",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "it is not signed by a CA this ponger trusts",
  SELF_SIGNED_CERT_IN_CHAIN: "it is not signed by a CA this ponger trusts",
  DEPTH_ZERO_SELF_SIGNED_CERT: "it is self-signed",
  CERT_HAS_EXPIRED: "it has expired",
  CERT_NOT_YET_VALID: "it is not valid yet",
  CERT_SIGNATURE_FAILURE: "its signature does not verify",
  INVALID_PURPOSE: "it is not for client authentication",
};

export interface Ponger {
  /** e.g. https://127.0.0.1:8443/ping, with the port actually bound. */
  readonly pingUrl: string;
  readonly probes: ProbeServer;
  close(): Promise<void>;
}

function tlsOptions(config: PongerConfig, material: TlsMaterial) {
  const mutual = config.service.clientCA !== undefined;
  return {
    key: material.privateKeyPem ?? "",
    cert: material.certificatePem ?? "",
    ...(mutual ? { ca: material.trustBundlePem ?? "" } : {}),
  };
}

/** Why a handshaken client was not let through, from its socket: no certificate, or the verify error. */
function refusal(socket: TLSSocket): { code: string; reason: string } {
  if (Object.keys(socket.getPeerCertificate()).length === 0) {
    return { code: "NO_CERTIFICATE", reason: "no client certificate was presented" };
  }
  const error = socket.authorizationError as unknown;
  const code =
    typeof error === "string" ? error : ((error as { code?: string } | null)?.code ?? String(error));
  return { code, reason: refusalReasons[code] ?? `it does not verify (${code})` };
}

type PongerMetrics = ReturnType<typeof pongerMetrics>;

function pongerMetrics(registry: Registry) {
  return {
    received: new Counter({
      name: "ping_requests_received_total",
      help: "Requests received on /ping, valid or not.",
      registers: [registry],
    }),
    failures: new Counter({
      name: "ping_failures_total",
      help: "Requests on /ping that were not a valid ping, by reason.",
      labelNames: ["reason"] as const,
      registers: [registry],
    }),
    tlsHandshakeFailures: new Counter({
      name: "ponger_tls_handshake_failures_total",
      help: "TLS handshakes refused, e.g. a client without a certificate from a trusted CA.",
      registers: [registry],
    }),
    drillFaults: new Counter({
      name: "ponger_drill_faults_total",
      help: "Faults a fire drill injected, by fault (abort, delay, refuse).",
      labelNames: ["fault"] as const,
      registers: [registry],
    }),
  };
}

/**
 * Refuses, right after the handshake and before any HTTP, a client whose certificate does not
 * verify (or any client, while a drill refuses them), logging why once per peer per minute; and
 * closes sockets whose handshake failed.
 */
function guardHandshakes(
  tlsServer: TlsServer,
  mutualTls: boolean,
  metrics: PongerMetrics,
  drill: DrillReader | undefined,
  logger: Logger,
): void {
  const refusals = new PeerLimiter();
  const reportRefusal = (remote: string | undefined, fields: Record<string, unknown>, message: string) => {
    metrics.tlsHandshakeFailures.inc();
    const held = refusals.take(remote ?? "unknown");
    if (held !== undefined)
      logger.warn({ remote, ...fields, ...(held > 0 ? { alsoRefusedSinceLastReport: held } : {}) }, message);
  };
  if (mutualTls) {
    // First of the listeners: HTTP never sees a client whose certificate does not verify.
    tlsServer.prependListener("secureConnection", (socket: TLSSocket) => {
      if (socket.authorized && !drill?.refuseHandshake()) return;
      if (socket.authorized) {
        metrics.drillFaults.inc({ fault: "refuse" });
        reportRefusal(
          socket.remoteAddress,
          { code: "FIRE_DRILL" },
          "Refused a client certificate: fire drill",
        );
      } else {
        reportRefusal(socket.remoteAddress, refusal(socket), "Refused a client certificate");
      }
      socket.destroy();
    });
  }
  tlsServer.on("tlsClientError", (error: Error & { code?: string }, socket) => {
    reportRefusal(socket.remoteAddress, { code: error.code, error: error.message }, "TLS handshake refused");
    // With a listener here Node leaves the socket open: a handshake that timed out would stay forever.
    socket.destroy();
  });
}

/** GET /ping answers pong (or the drill's fault); other methods on /ping are counted and refused. */
function routePing(
  app: ReturnType<typeof createHttpServer>,
  config: PongerConfig,
  metrics: PongerMetrics,
  drill: DrillReader | undefined,
  logger: Logger,
): void {
  const countNotPing = (request: FastifyRequest) => {
    metrics.received.inc();
    metrics.failures.inc({ reason: "method_not_allowed" });
    logger.warn(
      { remote: request.socket.remoteAddress },
      `Received ${request.method} /ping: only GET is a ping`,
    );
  };
  // Only GET (and HEAD) is a ping: other methods on /ping are counted and refused before their body
  // is read. A hook on this route alone, so that a ping runs no hook at all.
  app.route({
    method: ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
    url: pingPath,
    onRequest: (request, reply, done) => {
      refuseOtherMethods(request, reply, done, countNotPing);
    },
    handler: () => undefined,
  });
  app.get(pingPath, async (request, reply) => {
    metrics.received.inc();
    logger.info({ remote: request.socket.remoteAddress }, "Received GET /ping");
    if (config.nodeName) void reply.header(nodeHeader, config.nodeName);
    void reply.header(podHeader, config.podName).type("text/plain");
    const fault = drill?.nextFault() ?? {};
    if (fault.delayMs !== undefined) {
      metrics.drillFaults.inc({ fault: "delay" });
      await setTimeout(fault.delayMs);
    }
    if (fault.abortStatus !== undefined) {
      metrics.drillFaults.inc({ fault: "abort" });
      return reply
        .code(fault.abortStatus)
        .header(drillHeader, "abort")
        .send("fire drill: this ping was aborted");
    }
    return reply.send(pongBody);
  });
  app.setNotFoundHandler((_request, reply) =>
    reply.code(404).type("text/plain").send(`not found: this server answers GET ${pingPath}\n`),
  );
}

/** Keeps the ponger's certificates current (https only). */
function tlsReloader(
  config: PongerConfig,
  logger: Logger,
  apply: (material: TlsMaterial) => void,
): TlsReloader | undefined {
  if (config.service.protocol !== "https") return undefined;
  const { tlsCertificate: certificate, tlsPrivateKey: privateKey, clientCA: trustBundle } = config.service;
  return new TlsReloader({ paths: { certificate, privateKey, trustBundle }, logger, apply });
}

export async function startPonger(
  config: PongerConfig,
  logger: Logger,
  limits: ServerLimits = defaultServerLimits,
): Promise<Ponger> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const metrics = pongerMetrics(registry);
  const drill = config.drill ? new DrillReader({ file: config.drill, logger }) : undefined;
  drill?.start();

  const mutualTls = config.service.clientCA !== undefined;
  // New connections get a new context; established keep-alive connections finish on theirs.
  const reloader = tlsReloader(config, logger, (material) => {
    (app.server as unknown as TlsServer).setSecureContext(tlsOptions(config, material));
  });
  const initial = reloader?.start();
  const https = initial && {
    ...tlsOptions(config, initial),
    minVersion: "TLSv1.2" as const,
    requestCert: mutualTls,
    // Node would refuse an unverified client right after the handshake without a word; the
    // listener guardHandshakes adds refuses it at the same point, before any HTTP, and logs why.
    rejectUnauthorized: false,
  };
  const app = createHttpServer({ logger, limits, ...(https ? { https } : {}) });
  if (initial) guardHandshakes(app.server as unknown as TlsServer, mutualTls, metrics, drill, logger);
  routePing(app, config, metrics, drill, logger);

  let shuttingDown = false;
  const origin = await listenOn(app, config.service.address, config.service.port);
  const pingUrl = `${origin}${pingPath}`;
  logger.info({ url: pingUrl, mutualTls, pod: config.podName }, "Ponger listening");

  const probes = await startProbeServer({
    address: config.metrics.address,
    port: config.metrics.port,
    registry,
    logger,
    limits,
    readiness: () => (shuttingDown ? { ready: false, reason: "shutting down" } : { ready: true }),
    status: () => ({
      pod: config.podName,
      protocol: config.service.protocol,
      mutualTls,
      tls: reloader?.current ? { ...describeMaterial(reloader.current), ...reloader.status } : null,
      drill: drill?.status ?? null,
    }),
  });

  return {
    pingUrl,
    probes,
    close: async () => {
      shuttingDown = true;
      reloader?.stop();
      drill?.stop();
      // fastify stops accepting, closes idle keep-alive connections and lets requests in flight finish.
      await app.close();
      await probes.close();
    },
  };
}
