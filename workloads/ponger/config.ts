import { hostname } from "node:os";
import { ConfigReader } from "../config-reader.ts";

export interface PongerConfig {
  readonly service: {
    readonly address: string;
    readonly port: number;
    readonly protocol: "http" | "https";
    readonly tlsCertificate?: string | undefined;
    readonly tlsPrivateKey?: string | undefined;
    /** When set, clients must present a certificate signed by a CA in this bundle (mutual TLS). */
    readonly clientCA?: string | undefined;
  };
  readonly metrics: { readonly address: string; readonly port: number };
  /** Named in every pong's `x-ponger-pod` header, so pingers can count answers per pod. */
  readonly podName: string;
  /** The node the pod runs on (NODE_NAME, from the downward API), named in every pong. */
  readonly nodeName?: string | undefined;
  /** The fire drill file (drill.json), read while the ponger runs; no drill when unset. */
  readonly drill?: string | undefined;
}

type Env = Readonly<Record<string, string | undefined>>;

export async function loadPongerConfig(
  file: string | undefined,
  env: Env = process.env,
): Promise<PongerConfig> {
  const r = await ConfigReader.load(file, env);
  const protocol = r.oneOf("service.protocol", ["http", "https"] as const, "https");
  const tlsCertificate = r.optionalString("service.tlsCertificate");
  const tlsPrivateKey = r.optionalString("service.tlsPrivateKey");
  const clientCA = r.optionalString("service.clientCA");
  const config: PongerConfig = {
    service: {
      address: r.string("service.address", "0.0.0.0"),
      port: r.port("service.port", 8443),
      protocol,
      tlsCertificate,
      tlsPrivateKey,
      clientCA,
    },
    metrics: { address: r.string("metrics.address", "0.0.0.0"), port: r.port("metrics.port", 9090) },
    podName: env.POD_NAME ?? env.HOSTNAME ?? hostname(),
    nodeName: env.NODE_NAME,
    drill: r.optionalString("drill"),
  };
  if (protocol === "https") {
    r.check(
      tlsCertificate !== undefined && tlsPrivateKey !== undefined,
      "service.protocol is https, so service.tlsCertificate and service.tlsPrivateKey are required (or set service.protocol: http)",
    );
  } else {
    r.check(
      tlsCertificate === undefined && tlsPrivateKey === undefined && clientCA === undefined,
      "service.protocol is http, so service.tlsCertificate, service.tlsPrivateKey and service.clientCA must not be set (or set service.protocol: https)",
    );
  }
  r.finish();
  return config;
}
