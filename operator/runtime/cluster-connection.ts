/**
 * How to reach the API server and who to be there, read from a kubeconfig or from the in-cluster
 * ServiceAccount files. @kubernetes/client-node's KubeConfig does this too, but importing it loads
 * every generated API model (about 80 MB of memory); an operator needs only tokens, client
 * certificates and a CA. Users that authenticate with exec plugins or auth providers are handed to
 * client-node's KubeConfig, loaded only then.
 */
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import type { KeyObject } from "node:tls";
import type { RequestOptions } from "node:https";
import { homedir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";

export interface ClusterConnection {
  readonly server: string;
  readonly ca?: string | undefined;
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
  readonly insecureSkipTlsVerify?: boolean | undefined;
  readonly tlsServerName?: string | undefined;
  /** The kubeconfig context's namespace, or the in-cluster pod's namespace. */
  readonly namespace?: string | undefined;
  /** Headers to authenticate the next request; asked for every request, as tokens rotate. */
  headers(): Promise<Record<string, string>>;
}

interface NamedCluster {
  name: string;
  cluster: {
    server: string;
    "certificate-authority"?: string;
    "certificate-authority-data"?: string;
    "insecure-skip-tls-verify"?: boolean;
    "tls-server-name"?: string;
  };
}
interface NamedUser {
  name: string;
  user?: {
    token?: string;
    tokenFile?: string;
    "client-certificate"?: string;
    "client-certificate-data"?: string;
    "client-key"?: string;
    "client-key-data"?: string;
    username?: string;
    password?: string;
    exec?: unknown;
    "auth-provider"?: unknown;
  };
}
interface Kubeconfig {
  clusters?: NamedCluster[];
  users?: NamedUser[];
  contexts?: { name: string; context: { cluster: string; user: string; namespace?: string } }[];
  "current-context"?: string;
}

export class KubeconfigError extends Error {
  override readonly name = "KubeconfigError";
}

const inCluster = "/var/run/secrets/kubernetes.io/serviceaccount";
/** Bound ServiceAccount tokens are rotated by the kubelet; re-read the file this often, as client-go does. */
const tokenFileRefreshMs = 60_000;

function tokenFrom(file: string): () => Promise<string> {
  let cached: { token: string; at: number } | undefined;
  return async () => {
    if (!cached || Date.now() - cached.at > tokenFileRefreshMs) {
      cached = { token: (await readFile(file, "utf8")).trim(), at: Date.now() };
    }
    return cached.token;
  };
}

const decode = (data: string) => Buffer.from(data, "base64").toString("utf8");

/** Reads a kubeconfig's current context; `text` is the file's contents, `source` names it in errors. */
export async function connectionFromKubeconfig(
  text: string,
  source = "kubeconfig",
): Promise<ClusterConnection> {
  const config = (parse(text) ?? {}) as Kubeconfig;
  const contextName = config["current-context"];
  const context = config.contexts?.find((c) => c.name === contextName)?.context;
  if (!context)
    throw new KubeconfigError(`${source}: current-context "${contextName ?? ""}" is not one of its contexts`);
  const cluster = config.clusters?.find((c) => c.name === context.cluster)?.cluster;
  if (!cluster?.server) throw new KubeconfigError(`${source}: cluster "${context.cluster}" has no server`);
  const user = config.users?.find((u) => u.name === context.user)?.user ?? {};

  if (user.exec !== undefined || user["auth-provider"] !== undefined) {
    return delegateToClientNode(text, cluster.server, context.namespace);
  }
  const read = (file: string | undefined, data: string | undefined) =>
    data !== undefined ? decode(data) : file !== undefined ? readFileSync(file, "utf8") : undefined;
  const token = user.token;
  const tokenFile = user.tokenFile ? tokenFrom(user.tokenFile) : undefined;
  const basic =
    user.username !== undefined
      ? Buffer.from(`${user.username}:${user.password ?? ""}`).toString("base64")
      : undefined;
  return {
    server: cluster.server.replace(/\/$/, ""),
    ca: read(cluster["certificate-authority"], cluster["certificate-authority-data"]),
    cert: read(user["client-certificate"], user["client-certificate-data"]),
    key: read(user["client-key"], user["client-key-data"]),
    insecureSkipTlsVerify: cluster["insecure-skip-tls-verify"],
    tlsServerName: cluster["tls-server-name"],
    namespace: context.namespace,
    headers: async (): Promise<Record<string, string>> => {
      if (token) return { authorization: `Bearer ${token}` };
      if (tokenFile) return { authorization: `Bearer ${await tokenFile()}` };
      if (basic) return { authorization: `Basic ${basic}` };
      return {};
    },
  };
}

/** Exec plugins and auth providers: let @kubernetes/client-node run them (loaded only for these). */
async function delegateToClientNode(
  text: string,
  server: string,
  namespace: string | undefined,
): Promise<ClusterConnection> {
  const { KubeConfig } = await import("@kubernetes/client-node");
  const config = new KubeConfig();
  config.loadFromString(text);
  const probe: RequestOptions = {};
  await config.applyToHTTPSOptions(probe);
  // TLS options allow strings, Buffers and, for keys, { pem } objects, alone or in lists.
  type Material = string | Buffer | KeyObject;
  const asPem = (material: Material): string => {
    const raw: string | Buffer =
      typeof material === "string" || Buffer.isBuffer(material) ? material : material.pem;
    return typeof raw === "string" ? raw : raw.toString("utf8");
  };
  const pem = (value: Material | Material[] | undefined): string | undefined =>
    value === undefined ? undefined : (Array.isArray(value) ? value : [value]).map(asPem).join("");
  return {
    server: server.replace(/\/$/, ""),
    ca: pem(probe.ca),
    cert: pem(probe.cert),
    key: pem(probe.key),
    insecureSkipTlsVerify: probe.rejectUnauthorized === false,
    namespace,
    headers: async () => {
      const options: RequestOptions = {};
      await config.applyToHTTPSOptions(options);
      return Object.fromEntries(
        Object.entries(options.headers ?? {}).flatMap(([k, v]) =>
          v === undefined ? [] : [[k.toLowerCase(), String(v)]],
        ),
      );
    },
  };
}

/** The ServiceAccount files every pod gets, and the API server's in-cluster address. */
export function inClusterConnection(
  env: NodeJS.ProcessEnv = process.env,
  dir = inCluster,
): ClusterConnection {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT ?? "443";
  if (!host)
    throw new KubeconfigError(
      "not in a cluster (KUBERNETES_SERVICE_HOST is unset) and no kubeconfig was found",
    );
  const token = tokenFrom(join(dir, "token"));
  let namespace: string | undefined;
  try {
    namespace = readFileSync(join(dir, "namespace"), "utf8").trim();
  } catch {
    namespace = undefined;
  }
  return {
    server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
    ca: readFileSync(join(dir, "ca.crt"), "utf8"),
    namespace,
    headers: async () => ({ authorization: `Bearer ${await token()}` }),
  };
}

/**
 * The connection a program started without flags should use, in kubectl's order: an explicit file,
 * else $KUBECONFIG (its first file), else ~/.kube/config, else the in-cluster ServiceAccount.
 */
export async function defaultConnection(
  file?: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ClusterConnection> {
  const candidates = file
    ? [file]
    : [...(env.KUBECONFIG ?? "").split(":").filter(Boolean), join(homedir(), ".kube", "config")];
  for (const candidate of candidates) {
    let text: string;
    try {
      text = await readFile(candidate, "utf8");
    } catch (error) {
      if (file) throw new KubeconfigError(`cannot read kubeconfig ${file}: ${(error as Error).message}`);
      continue;
    }
    return connectionFromKubeconfig(text, candidate);
  }
  return inClusterConnection(env);
}
