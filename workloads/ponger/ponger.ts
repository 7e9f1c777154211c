/**
 * The ponger: answers `GET /ping` with `pong` over HTTPS (mutual TLS when a client CA is configured)
 * or plain HTTP, names its pod in a response header, counts what it receives, and swaps in new
 * certificates without a restart.
 */
import { createServer as createTcpServer, type Server, type Socket } from "node:net";
import { createServer as createTlsServer, type Server as TlsServer } from "node:tls";
import { listen, pathOf } from "../../lib/http-server.ts";
import type { Logger } from "../../lib/line-logger.ts";
import { type ProbeServer, startProbeServer } from "../../lib/probe-server.ts";
import { pingPath, podHeader, pongBody } from "../protocol.ts";
import { describeMaterial, type TlsMaterial } from "../tls-files.ts";
import { MetricsRegistry } from "../metrics.ts";
import { TlsReloader } from "../tls-reloader.ts";
import type { PongerConfig } from "./config.ts";
import { type Answer, type RequestHead, serveConnection } from "./http1.ts";

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

export async function startPonger(config: PongerConfig, logger: Logger): Promise<Ponger> {
  const registry = new MetricsRegistry().withProcessMetrics();
  const received = registry.counter(
    "ping_requests_received_total",
    "Requests received on /ping, valid or not.",
  );
  const failures = registry.counter(
    "ping_failures_total",
    "Requests on /ping that were not a valid ping, by reason.",
    ["reason"],
  );
  const tlsHandshakeFailures = registry.counter(
    "ponger_tls_handshake_failures_total",
    "TLS handshakes refused, e.g. a client without a certificate from a trusted CA.",
  );

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
          (server as TlsServer).setSecureContext(tlsOptions(config, material));
        },
      })
    : undefined;
  const initial = reloader?.start();

  const mutualTls = config.service.clientCA !== undefined;

  // Per connection: a logger carrying the peer's address (serialized once, not per request).
  const connectionLogger = (socket: Socket): Logger => logger.child({ remote: socket.remoteAddress });

  const pong: Answer = {
    status: 200,
    headers: { "content-type": "text/plain", [podHeader]: config.podName },
    body: pongBody,
  };
  const notFound: Answer = {
    status: 404,
    headers: { "content-type": "text/plain" },
    body: `not found: this server answers GET ${pingPath}\n`,
  };
  const methodNotAllowed: Answer = {
    status: 405,
    headers: { "content-type": "text/plain", allow: "GET, HEAD" },
    body: "method not allowed: use GET\n",
    close: true,
  };

  function answer(head: RequestHead, log: Logger): Answer {
    if (pathOf(head.target) !== pingPath) return notFound;
    received.inc();
    if (head.method === "GET" || head.method === "HEAD") {
      log.info("Received GET /ping");
      return pong;
    }
    failures.inc({ reason: "method_not_allowed" });
    log.warn(`Received ${head.method} /ping: only GET is a ping`);
    return methodNotAllowed;
  }

  const connections = new Set<Socket>();
  const serve = (socket: Socket) => {
    connections.add(socket);
    socket.once("close", () => connections.delete(socket));
    let log: Logger | undefined;
    serveConnection(socket, {
      maxHeadBytes: 16 * 1024,
      headTimeoutMs: 10_000,
      idleTimeoutMs: 120_000,
      onRequest: (head) => answer(head, (log ??= connectionLogger(socket))),
      onInvalid: (reason) => {
        (log ??= connectionLogger(socket)).warn({ reason }, "Refused a malformed request");
      },
    });
  };
  const server: Server = initial
    ? createTlsServer(
        {
          ...tlsOptions(config, initial),
          requestCert: mutualTls,
          rejectUnauthorized: mutualTls,
          minVersion: "TLSv1.2",
          handshakeTimeout: 10_000,
        },
        serve,
      )
    : createTcpServer(serve);

  server.on("tlsClientError", (error: Error & { code?: string }, socket: Socket) => {
    tlsHandshakeFailures.inc();
    logger.warn(
      { code: error.code, error: error.message, remote: socket.remoteAddress },
      "TLS handshake refused",
    );
  });

  let shuttingDown = false;
  const origin = await listen(server, config.service.address, config.service.port, config.service.protocol);
  const pingUrl = `${origin}${pingPath}`;
  logger.info({ url: pingUrl, mutualTls, pod: config.podName }, "Ponger listening");

  const probes = await startProbeServer({
    address: config.metrics.address,
    port: config.metrics.port,
    registry,
    logger,
    readiness: () => (shuttingDown ? { ready: false, reason: "shutting down" } : { ready: true }),
    status: () => ({
      pod: config.podName,
      protocol: config.service.protocol,
      mutualTls,
      tls: reloader?.current ? { ...describeMaterial(reloader.current), ...reloader.status } : null,
    }),
  });

  return {
    pingUrl,
    probes,
    close: async () => {
      shuttingDown = true;
      reloader?.stop();
      // Stop accepting; answers are written as requests arrive, so every open connection is between
      // requests: end each after what was written to it.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of connections) socket.end();
      await closed;
      await probes.close();
    },
  };
}
