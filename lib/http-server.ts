/**
 * Every HTTP server here (the ponger, the workloads' and the operator's probe ports) is fastify on
 * node:http or node:https, built by createHttpServer with one set of limits. The limits are the
 * libraries' own settings: Node's timeouts and header limits, fastify's body limit. What they cannot
 * say, which connection to give up when too many are open, is said here in a few lines, and always in
 * favour of a connection that is doing something: a kubelet probe or a pinger is never locked out by
 * connections that only sit there.
 */
import type { ServerOptions as HttpsOptions } from "node:https";
import type { Server as NetServer, Socket } from "node:net";
import type { Server as TlsServer, TLSSocket } from "node:tls";
import Fastify, { type FastifyError, type FastifyInstance } from "fastify";
import type { Logger } from "./logger.ts";

export interface ServerLimits {
  /** A connection that sends nothing for this long is closed (fastify's connectionTimeout). */
  readonly idleTimeoutMs: number;
  /** From a request's first byte to the end of its headers (slow-header clients). */
  readonly headersTimeoutMs: number;
  /** From a request's first byte to its end. */
  readonly requestTimeoutMs: number;
  /** How long a connection is kept open after an answer, waiting for the next request. */
  readonly keepAliveTimeoutMs: number;
  /** A TLS handshake not finished in this time is dropped. */
  readonly handshakeTimeoutMs: number;
  /** How often Node checks the header and request timeouts (its default is 30 s). */
  readonly timeoutCheckIntervalMs: number;
  /** Larger request heads are answered 431. A ping or a probe is a few hundred bytes. */
  readonly maxHeaderBytes: number;
  /** Request bodies are never parsed; a declared body beyond this is refused with 413. */
  readonly maxBodyBytes: number;
  /**
   * Past this many open connections, the idle ones (no request in progress) are closed as a new one
   * arrives. There is no hard cap: one would lock out probes and pingers along with the flood.
   */
  readonly idleConnectionsAbove: number;
  /**
   * Past this many connections still in their TLS handshake, the oldest is dropped as a new one
   * arrives, so connections that never start TLS cannot keep a pinger out.
   */
  readonly maxPendingHandshakes: number;
}

export const defaultServerLimits: ServerLimits = {
  idleTimeoutMs: 10_000,
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  handshakeTimeoutMs: 5_000,
  timeoutCheckIntervalMs: 1_000,
  maxHeaderBytes: 8 * 1024,
  maxBodyBytes: 1024,
  idleConnectionsAbove: 256,
  maxPendingHandshakes: 256,
};

export interface HttpServerOptions {
  readonly logger: Logger;
  /** TLS options for node:https; plain HTTP without them. */
  readonly https?: HttpsOptions;
  readonly limits?: ServerLimits;
}

/**
 * A fastify instance with the limits applied; server errors are logged, nothing else of fastify's.
 */
export function createHttpServer(options: HttpServerOptions): FastifyInstance {
  const limits = options.limits ?? defaultServerLimits;
  const nodeOptions = {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: limits.timeoutCheckIntervalMs,
    maxHeaderSize: limits.maxHeaderBytes,
    requireHostHeader: true,
  };
  // No logger of fastify's own: it would cost every request a child logger (4% of the ponger's
  // throughput). The programs log what matters about a request themselves, and server errors below.
  const app = Fastify({
    logger: false,
    connectionTimeout: limits.idleTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    bodyLimit: limits.maxBodyBytes,
    // A request that arrives while the server closes is still served: a pinger's ping on a kept-alive
    // connection as the pod stops is answered, not failed with a 503.
    return503OnClosing: false,
    ...(options.https
      ? { https: { ...options.https, ...nodeOptions, handshakeTimeout: limits.handshakeTimeoutMs } }
      : { http: nodeOptions }),
  }) as unknown as FastifyInstance;
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if ((error.statusCode ?? 500) >= 500) {
      options.logger.error(
        { err: error, method: request.method, path: pathOf(request.url) },
        "Request failed",
      );
    }
    return reply.send(error);
  });
  // Nothing here takes a body: none is parsed, so none is buffered.
  app.removeAllContentTypeParsers();
  closeIdleWhenCrowded(app.server, limits.idleConnectionsAbove);
  if (options.https)
    dropOldestHandshakesWhenCrowded(app.server as unknown as TlsServer, limits.maxPendingHandshakes);
  return app;
}

function closeIdleWhenCrowded(
  server: NetServer & { closeIdleConnections?: () => void },
  above: number,
): void {
  let open = 0;
  server.on(connectionEvent(server), (socket: Socket) => {
    open++;
    socket.once("close", () => open--);
    if (open > above) server.closeIdleConnections?.();
  });
}

/** The event that hands the HTTP layer a connection: after the handshake for TLS. */
const connectionEvent = (server: NetServer) =>
  "setSecureContext" in server ? "secureConnection" : "connection";

function dropOldestHandshakesWhenCrowded(server: TlsServer, max: number): void {
  // Connections by peer address and port, in arrival order, until their handshake ends either way.
  const pending = new Map<string, Socket>();
  const peer = (socket: Socket) => `${socket.remoteAddress ?? ""}|${socket.remotePort ?? ""}`;
  server.on("connection", (socket: Socket) => {
    const key = peer(socket);
    pending.set(key, socket);
    socket.once("close", () => {
      if (pending.get(key) === socket) pending.delete(key);
    });
    if (pending.size > max) {
      const [oldestKey, oldest] = pending.entries().next().value ?? [];
      if (oldestKey !== undefined) pending.delete(oldestKey);
      oldest?.destroy();
    }
  });
  server.prependListener("secureConnection", (socket: TLSSocket) => pending.delete(peer(socket)));
}

/** Listens on address:port (0 picks a port) and returns scheme://address:port with the bound port. */
export async function listenOn(app: FastifyInstance, address: string, port: number): Promise<string> {
  await app.listen({ host: address, port });
  const bound = app.server.address();
  const boundPort = typeof bound === "object" && bound ? bound.port : port;
  const scheme = "setSecureContext" in app.server ? "https" : "http";
  return `${scheme}://${address.includes(":") ? `[${address}]` : address}:${boundPort}`;
}

/** The path of a request target, without its query: `/ping?x=1` -> `/ping`. */
export function pathOf(url: string | undefined): string {
  if (url === undefined) return "/";
  const query = url.indexOf("?");
  return query === -1 ? url : url.slice(0, query);
}
