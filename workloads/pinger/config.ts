import { hostname } from "node:os";
import { ConfigReader } from "../config-reader.ts";

export interface PingerConfig {
  readonly ponger: {
    /** The full URL pinged, e.g. https://demo-ponger.default.svc:8443/ping. */
    readonly url: string;
    /** PEM bundle of CAs to trust for the ponger's certificate; the system CAs when unset. */
    readonly acceptCert?: string | undefined;
    /** Client certificate and key for mutual TLS; both or neither. */
    readonly clientCertificate?: string | undefined;
    readonly clientPrivateKey?: string | undefined;
  };
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /** How long the pinger may wait, when it starts, for the ponger to be reachable (pinger.ts); 0: no wait. */
  readonly startupGraceMs: number;
  readonly metrics: { readonly address: string; readonly port: number };
  readonly podName: string;
  /** The node the pod runs on (NODE_NAME, from the downward API): where its pings start. */
  readonly nodeName?: string | undefined;
}

type Env = Readonly<Record<string, string | undefined>>;

export async function loadPingerConfig(
  file: string | undefined,
  env: Env = process.env,
): Promise<PingerConfig> {
  const r = await ConfigReader.load(file, env);
  const url = r.required("ponger.url", "the ponger's URL, e.g. https://demo-ponger.default.svc:8443/ping");
  const acceptCert = r.optionalString("ponger.acceptCert");
  const clientCertificate = r.optionalString("ponger.clientCertificate");
  const clientPrivateKey = r.optionalString("ponger.clientPrivateKey");
  const config: PingerConfig = {
    ponger: { url, acceptCert, clientCertificate, clientPrivateKey },
    intervalMs: r.duration("interval", "1s"),
    timeoutMs: r.duration("timeout", "2s"),
    startupGraceMs: r.duration("startupGrace", "30s", true),
    metrics: { address: r.string("metrics.address", "0.0.0.0"), port: r.port("metrics.port", 9090) },
    podName: env.POD_NAME ?? env.HOSTNAME ?? hostname(),
    nodeName: env.NODE_NAME,
  };
  if (url !== "") {
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      parsed = undefined;
    }
    r.check(
      parsed !== undefined && (parsed.protocol === "https:" || parsed.protocol === "http:"),
      `ponger.url "${url}" must be an http:// or https:// URL, e.g. https://demo-ponger.default.svc:8443/ping`,
    );
    if (parsed?.protocol === "http:") {
      r.check(
        acceptCert === undefined && clientCertificate === undefined,
        "ponger.url is http://, so ponger.acceptCert and the client certificate would be ignored: use https:// or remove them",
      );
    }
  }
  r.check(
    (clientCertificate === undefined) === (clientPrivateKey === undefined),
    "ponger.clientCertificate and ponger.clientPrivateKey go together for mutual TLS: set both or neither",
  );
  r.finish();
  return config;
}
