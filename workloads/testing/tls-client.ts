import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { Agent, request } from "undici";

export interface ClientTls {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  /** The name to check the server's certificate against, when the URL names an address. */
  readonly servername?: string;
}

/** One request on a fresh connection (no pooling between calls), so each call is a new handshake. */
export async function fetchOnce(
  url: string,
  tls: ClientTls = {},
  method: "GET" | "POST" | "DELETE" = "GET",
): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  const agent = new Agent({ connect: { ...tls }, pipelining: 0 });
  try {
    const response = await request(url, { method, dispatcher: agent, signal: AbortSignal.timeout(5_000) });
    return { status: response.statusCode, body: await response.body.text(), headers: response.headers };
  } finally {
    await agent.destroy();
  }
}

/** Reads one sample's value from Prometheus text, e.g. `ping_failures_total{reason="timeout"}`. */
export function metricValue(text: string, sample: string): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith(`${sample} `)) return Number(line.slice(sample.length + 1));
  }
  return undefined;
}

/**
 * Writes `request` as raw bytes on a new connection (TLS when the URL is https) and collects the
 * answer until the server closes, `done` says it is complete, or `timeoutMs` passes. Resolves with the
 * answer and how long it took; what an attacker's hand-made request gets.
 */
export function rawExchange(
  url: string,
  request: string | Buffer,
  options: { tls?: ClientTls; done?: (answer: string) => boolean; timeoutMs?: number } = {},
): Promise<{ answer: string; ms: number; closed: boolean }> {
  const { hostname, port, protocol } = new URL(url);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    let answer = "";
    const finish = (closed: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ answer, ms: performance.now() - started, closed });
    };
    const socket =
      protocol === "https:"
        ? tlsConnect({ host: hostname, port: Number(port), servername: "localhost", ...options.tls }, () =>
            socket.write(request),
          )
        : netConnect(Number(port), hostname, () => socket.write(request));
    const timer = setTimeout(() => finish(false), options.timeoutMs ?? 5_000);
    socket.on("data", (chunk: Buffer) => {
      answer += chunk.toString("latin1");
      if (options.done?.(answer)) finish(false);
    });
    socket.on("close", () => finish(true));
    socket.on("error", (error: Error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/**
 * Opens `count` TCP connections that send nothing (or `first` and then nothing) and waits until all
 * are connected. Returns each one's closing, resolving with its lifetime in milliseconds, and a way to
 * close them all.
 */
export async function parkedConnections(
  url: string,
  count: number,
  first?: string,
): Promise<{ closed: Promise<number>[]; close(): void }> {
  const { hostname, port } = new URL(url);
  const sockets: Socket[] = [];
  const opened = await Promise.all(
    Array.from(
      { length: count },
      () =>
        // Wrapped: a promise resolved with a promise would wait for it.
        new Promise<{ lifetime: Promise<number> }>((resolve) => {
          const started = performance.now();
          const socket = netConnect(Number(port), hostname);
          sockets.push(socket);
          // Read (and drop) what the server says, so that its closing is seen.
          socket.resume();
          const lifetime = new Promise<number>((done) =>
            socket.on("close", () => done(performance.now() - started)),
          );
          socket.on("connect", () => {
            if (first !== undefined) socket.write(first);
            resolve({ lifetime });
          });
          socket.on("error", () => undefined);
        }),
    ),
  );
  return {
    closed: opened.map((o) => o.lifetime),
    close: () => {
      for (const socket of sockets) socket.destroy();
    },
  };
}
