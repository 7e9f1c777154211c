/**
 * The ponger: answers `GET /ping` with `pong` over HTTPS (mutual TLS when a client CA is configured)
 * or plain HTTP, names its pod in a response header, counts what it receives, and swaps in new
 * certificates without a restart.
 */
import type { Server, Socket } from "node:net";
import type { Server as TlsServer, TLSSocket } from "node:tls";
import { closeServing, listen, pathOf } from "../../lib/http-server.ts";
import type { Logger } from "../../lib/line-logger.ts";
import type { ProbeServer } from "../../lib/probe-routes.ts";
import { startProbePort } from "../probe-port.ts";
import { PeerLimiter } from "../peer-limiter.ts";
import { pingPath, podHeader, pongBody, refusedHeader } from "../protocol.ts";
import { describeMaterial, type TlsMaterial } from "../tls-files.ts";
import { MetricsRegistry } from "../metrics.ts";
import { TlsReloader } from "../tls-reloader.ts";
import type { PongerConfig } from "./config.ts";
import { type Answer, type RequestHead, serveConnection } from "../../lib/http1.ts";

const { createServer: createTcpServer } = process.getBuiltinModule("node:net");
const { createServer: createTlsServer } = process.getBuiltinModule("node:tls");

/** What a certificate verification error means, for the 403 and the log. */
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

/**
 * What one ponger holds open for clients, authenticated or not. Defaults for a pod with a 256 MiB
 * limit; tests make them small.
 */
export interface PongerLimits {
  /** A TLS handshake not finished in this time is dropped. */
  readonly handshakeTimeoutMs: number;
  /** Connections beyond this many are closed as they arrive. */
  readonly maxConnections: number;
  /** A connection that sends nothing for this long is closed. */
  readonly idleTimeoutMs: number;
}

export const defaultPongerLimits: PongerLimits = {
  handshakeTimeoutMs: 10_000,
  maxConnections: 512,
  idleTimeoutMs: 120_000,
};

export async function startPonger(
  config: PongerConfig,
  logger: Logger,
  limits: PongerLimits = defaultPongerLimits,
): Promise<Ponger> {
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

  const refusals = new PeerLimiter();
  const reportRefusal = (remote: string | undefined, fields: Record<string, unknown>, message: string) => {
    tlsHandshakeFailures.inc();
    const held = refusals.take(remote ?? "unknown");
    if (held !== undefined)
      logger.warn({ remote, ...fields, ...(held > 0 ? { alsoRefusedSinceLastReport: held } : {}) }, message);
  };

  /**
   * A client whose certificate does not verify: the handshake has completed (the server does not
   * reject by itself, so that the reason can be told), and every request gets a 403 saying why, then
   * the connection closes. Nothing else is served on it.
   */
  function refuse(socket: TLSSocket): void {
    const presented = Object.keys(socket.getPeerCertificate()).length > 0;
    const code = presented
      ? ((socket.authorizationError as { code?: string } | null)?.code ?? String(socket.authorizationError))
      : "NO_CERTIFICATE";
    const reason = presented
      ? (refusalReasons[code] ?? `it does not verify (${code})`)
      : "no client certificate was presented";
    reportRefusal(socket.remoteAddress, { code, reason }, "Refused a client certificate");
    const answer: Answer = {
      status: 403,
      headers: {
        "content-type": "text/plain",
        [refusedHeader]: "client-certificate",
        [podHeader]: config.podName,
      },
      body: `client certificate refused: ${reason}\n`,
      close: true,
    };
    serveConnection(socket, {
      maxHeadBytes: 16 * 1024,
      headTimeoutMs: 5_000,
      idleTimeoutMs: 10_000,
      onRequest: () => answer,
    });
  }

  const connections = new Set<Socket>();
  const serve = (socket: Socket) => {
    connections.add(socket);
    socket.once("close", () => connections.delete(socket));
    if (mutualTls && !(socket as TLSSocket).authorized) {
      refuse(socket as TLSSocket);
      return;
    }
    let log: Logger | undefined;
    serveConnection(socket, {
      maxHeadBytes: 16 * 1024,
      headTimeoutMs: 10_000,
      idleTimeoutMs: limits.idleTimeoutMs,
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
          // Verified in serve(), which refuses with the reason (see refuse()).
          rejectUnauthorized: false,
          minVersion: "TLSv1.2",
          handshakeTimeout: limits.handshakeTimeoutMs,
        },
        serve,
      )
    : createTcpServer(serve);

  server.maxConnections = limits.maxConnections;
  // Every accepted TCP connection, handshaken or not, so that close() can end the ones that never were.
  const accepted = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    accepted.add(socket);
    socket.once("close", () => accepted.delete(socket));
  });
  server.on("tlsClientError", (error: Error & { code?: string }, socket: Socket) => {
    reportRefusal(socket.remoteAddress, { code: error.code, error: error.message }, "TLS handshake refused");
    // With a listener here Node leaves the socket open: a handshake that timed out would stay forever.
    socket.destroy();
  });

  let shuttingDown = false;
  const origin = await listen(server, config.service.address, config.service.port, config.service.protocol);
  const pingUrl = `${origin}${pingPath}`;
  logger.info({ url: pingUrl, mutualTls, pod: config.podName }, "Ponger listening");

  const probes = await startProbePort({
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
      // Connections still in their handshake, or not ending, are not waited for past a grace period.
      await closeServing(server, connections, accepted);
      await probes.close();
    },
  };
}
