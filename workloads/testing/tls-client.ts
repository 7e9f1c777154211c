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
