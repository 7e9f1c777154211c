/** What the programs' servers share: binding, the URL they got, and a graceful close. */
import type { Server } from "node:http";
import type { Server as NetServer, Socket } from "node:net";

/** Listens on address:port (0 picks a port) and returns scheme://address:port with the bound port. */
export async function listen(
  server: NetServer,
  address: string,
  port: number,
  scheme: "http" | "https",
): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: address, port }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const bound = server.address();
  const boundPort = typeof bound === "object" && bound ? bound.port : port;
  return `${scheme}://${address.includes(":") ? `[${address}]` : address}:${boundPort}`;
}

/**
 * Stops accepting, closes idle keep-alive connections at once, lets requests in flight finish, and
 * after `graceMs` closes whatever is still open.
 */
export function closeGracefully(server: Server, graceMs = 5_000): Promise<void> {
  return new Promise((resolve) => {
    const force = setTimeout(() => server.closeAllConnections(), graceMs);
    force.unref();
    server.close(() => {
      clearTimeout(force);
      resolve();
    });
    server.closeIdleConnections();
  });
}

/** The path of a request target, without its query: `/ping?x=1` -> `/ping`. */
export function pathOf(url: string | undefined): string {
  if (url === undefined) return "/";
  const query = url.indexOf("?");
  return query === -1 ? url : url.slice(0, query);
}

/**
 * For servers built on lib/http1.ts, which answer as requests arrive, so every open connection is
 * between requests: stops accepting, ends each of `serving` after what was written to it, and after
 * `graceMs` destroys whatever of `all` is still open (e.g. connections still in their TLS handshake).
 */
export async function closeServing(
  server: NetServer,
  serving: Iterable<Socket>,
  all: Iterable<Socket> = serving,
  graceMs = 2_000,
): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  for (const socket of serving) socket.end();
  const force = setTimeout(() => {
    for (const socket of all) socket.destroy();
  }, graceMs);
  await closed;
  clearTimeout(force);
}
