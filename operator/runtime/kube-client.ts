/**
 * A small Kubernetes REST client for the calls a controller makes:
 * list, get, create, server-side apply (objects and status), merge-patch, delete. Every call is counted
 * by verb and resource, which is how the tests see that an idle operator writes nothing.
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import { Counter, type Registry } from "prom-client";
import { Agent, fetch } from "undici";
import type { ClusterConnection } from "./cluster-connection.ts";
import { collectionPath, objectPath, resources, type ResourceType, resourceTypeOf } from "./resources.ts";

export const fieldManager = "pingpong-operator";

export interface Status {
  kind?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
}

export class KubeApiError extends Error {
  override readonly name = "KubeApiError";
  readonly status: number;
  readonly reason: string;

  constructor(method: string, path: string, status: number, body: Status | undefined) {
    super(`${method} ${path}: ${status} ${body?.reason ?? ""}: ${body?.message ?? "(no message)"}`);
    this.status = status;
    this.reason = body?.reason ?? "";
  }
}

/** A write refused because its resourceVersion precondition no longer held (HTTP 409 Conflict). */
export function isConflict(error: unknown): boolean {
  return error instanceof KubeApiError && error.status === 409 && error.reason === "Conflict";
}

export interface ListResult<T> {
  readonly items: T[];
  readonly resourceVersion: string;
}

type HttpMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

type Verb = "list" | "watch" | "get" | "create" | "apply" | "patch" | "update" | "delete";

export interface WatchEvent<T> {
  readonly type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  readonly object: T & Status;
}

export interface WatchHandle {
  /** Resolves when the watch ends normally (server timeout or abort); rejects on a failure. */
  readonly done: Promise<void>;
  abort(): void;
}
const writes: ReadonlySet<Verb> = new Set(["create", "apply", "patch", "update", "delete"]);

/** Objects per page when listing. */
const defaultListPageSize = 500;

/** An error answer's Status, or its text as the message when it is not JSON (e.g. from a proxy). */
function statusOf(text: string): Status | undefined {
  if (text === "") return undefined;
  try {
    return JSON.parse(text) as Status;
  } catch {
    return { message: text.slice(0, 500) };
  }
}

export class KubeClient {
  readonly cluster: ClusterConnection;
  private readonly server: string;
  private readonly requests: Counter<"verb" | "resource" | "code"> | undefined;
  /** One keep-alive pool for every request and watch. */
  private readonly agent: Agent;

  private readonly listPageSize: number;

  constructor(cluster: ClusterConnection, registry?: Registry, options: { listPageSize?: number } = {}) {
    this.cluster = cluster;
    this.listPageSize = options.listPageSize ?? defaultListPageSize;
    this.server = cluster.server;
    this.agent = new Agent({
      keepAliveTimeout: 30_000,
      connect: {
        ...(cluster.ca === undefined ? {} : { ca: cluster.ca }),
        ...(cluster.cert === undefined ? {} : { cert: cluster.cert }),
        ...(cluster.key === undefined ? {} : { key: cluster.key }),
        ...(cluster.insecureSkipTlsVerify ? { rejectUnauthorized: false } : {}),
        ...(cluster.tlsServerName === undefined ? {} : { servername: cluster.tlsServerName }),
      },
    });
    this.requests = registry
      ? new Counter({
          name: "pingpong_operator_api_requests_total",
          help: "Kubernetes API requests by verb, resource and HTTP status code.",
          labelNames: ["verb", "resource", "code"] as const,
          registers: [registry],
        })
      : undefined;
  }

  /** Headers for the next request (credentials can rotate) and the one pooled dispatcher. */
  private async connection(): Promise<{ headers: Record<string, string>; dispatcher: Agent }> {
    return { headers: await this.cluster.headers(), dispatcher: this.agent };
  }

  /** Closes pooled connections (watches must be aborted first). */
  async close(): Promise<void> {
    await this.agent.close();
  }

  /** Writes (create, apply, patch, update, delete) counted so far, for tests and benchmarks. */
  async writeCount(): Promise<number> {
    if (!this.requests) return 0;
    const { values } = await this.requests.get();
    return values.filter((v) => writes.has(v.labels.verb as Verb)).reduce((sum, v) => sum + v.value, 0);
  }

  private async send<T>(
    verb: Verb,
    type: ResourceType,
    method: HttpMethod,
    path: string,
    options: { query?: Record<string, string>; body?: unknown; contentType?: string } = {},
  ): Promise<T> {
    const url = new URL(this.server + path);
    for (const [key, value] of Object.entries(options.query ?? {})) url.searchParams.set(key, value);
    const connection = await this.connection();
    const headers: Record<string, string> = { ...connection.headers, accept: "application/json" };
    if (options.body !== undefined) headers["content-type"] = options.contentType ?? "application/json";
    let code = "error";
    try {
      const response = await fetch(url, {
        method,
        headers,
        dispatcher: connection.dispatcher,
        body: options.body === undefined ? null : JSON.stringify(options.body),
        signal: AbortSignal.timeout(30_000),
      });
      code = String(response.status);
      const text = await response.text();
      // The status first: an error from a proxy or a load balancer in front of the API server is often
      // not JSON, and must still say which HTTP status it was.
      if (!response.ok) throw new KubeApiError(method, path, response.status, statusOf(text));
      try {
        return (text === "" ? undefined : JSON.parse(text)) as T;
      } catch {
        throw new Error(
          `${method} ${path}: HTTP ${response.status} with a body that is not JSON: ${text.slice(0, 200)}`,
        );
      }
    } finally {
      this.requests?.inc({ verb, resource: type.plural, code });
    }
  }

  async list<T extends KubernetesObject>(
    type: ResourceType,
    namespace?: string,
    labelSelector?: string,
  ): Promise<ListResult<T>> {
    // In pages, as client-go lists: one huge answer costs the API server and us memory at once.
    const items: T[] = [];
    let resourceVersion = "";
    let next: string | undefined;
    do {
      const query: Record<string, string> = { limit: String(this.listPageSize) };
      if (labelSelector) query.labelSelector = labelSelector;
      if (next) query.continue = next;
      const page = await this.send<{
        items?: T[];
        metadata?: { resourceVersion?: string; continue?: string };
      }>("list", type, "GET", collectionPath(type, namespace), { query });
      // List items carry no apiVersion/kind; put them back so cached objects are complete.
      for (const item of page.items ?? [])
        items.push({ ...item, apiVersion: type.apiVersion, kind: type.kind });
      resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
      next = page.metadata?.continue || undefined;
    } while (next);
    return { items, resourceVersion };
  }

  /** The object, or undefined when it does not exist. */
  async get<T extends KubernetesObject>(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
  ): Promise<T | undefined> {
    try {
      return await this.send<T>("get", type, "GET", objectPath(type, namespace, name));
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 404) return undefined;
      throw error;
    }
  }

  /**
   * GET `path` on a pod's port through the API server's pod proxy (needs pods/proxy get): how a
   * program outside the cluster reads a pod's HTTP endpoint, e.g. a workload's /status.
   */
  async getFromPod<T>(namespace: string, pod: string, port: number, path: string): Promise<T> {
    return this.send<T>(
      "get",
      resources.pod,
      "GET",
      `${objectPath(resources.pod, namespace, `${pod}:${port}`)}/proxy${path}`,
    );
  }

  async create<T extends KubernetesObject>(object: T): Promise<T> {
    const type = resourceTypeOf(object.apiVersion, object.kind);
    return this.send<T>("create", type, "POST", collectionPath(type, object.metadata?.namespace), {
      body: object,
    });
  }

  async update<T extends KubernetesObject>(object: T): Promise<T> {
    const type = resourceTypeOf(object.apiVersion, object.kind);
    const name = object.metadata?.name ?? "";
    return this.send<T>("update", type, "PUT", objectPath(type, object.metadata?.namespace, name), {
      body: object,
    });
  }

  /** Server-side apply as the operator's field manager, taking ownership of the fields it sets. */
  async apply<T extends KubernetesObject>(object: T, subresource?: "status"): Promise<T> {
    const type = resourceTypeOf(object.apiVersion, object.kind);
    const name = object.metadata?.name ?? "";
    const path = objectPath(type, object.metadata?.namespace, name) + (subresource ? `/${subresource}` : "");
    return this.send<T>("apply", type, "PATCH", path, {
      query: { fieldManager, force: "true" },
      body: object,
      contentType: "application/apply-patch+yaml",
    });
  }

  async mergePatch<T extends KubernetesObject>(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    patch: unknown,
  ): Promise<T> {
    return this.send<T>("patch", type, "PATCH", objectPath(type, namespace, name), {
      body: patch,
      contentType: "application/merge-patch+json",
    });
  }

  /**
   * Streams watch events until the server ends the watch, `abort()` is called, or nothing (not even a
   * bookmark) arrives for `idleTimeoutMs`. A non-200 answer rejects `done` with a KubeApiError.
   */
  // eslint-disable-next-line max-lines-per-function -- one streaming loop: the abort, the line splitting and the bookmarks belong to the same request
  async watch<T extends KubernetesObject>(
    type: ResourceType,
    namespace: string | undefined,
    query: Record<string, string>,
    onEvent: (event: WatchEvent<T>) => void,
    idleTimeoutMs = 150_000,
  ): Promise<WatchHandle> {
    const path = collectionPath(type, namespace);
    const url = new URL(this.server + path);
    for (const [key, value] of Object.entries({ ...query, watch: "true" })) url.searchParams.set(key, value);
    const connection = await this.connection();
    const controller = new AbortController();
    let idle: NodeJS.Timeout | undefined;
    const touch = () => {
      clearTimeout(idle);
      idle = setTimeout(
        () => controller.abort(new DOMException("watch idle", "TimeoutError")),
        idleTimeoutMs,
      );
      idle.unref();
    };
    touch();
    let response: Response;
    try {
      response = await fetch(url, {
        method: "GET",
        headers: { ...connection.headers, accept: "application/json" },
        dispatcher: connection.dispatcher,
        signal: controller.signal,
      });
    } catch (error) {
      clearTimeout(idle);
      this.requests?.inc({ verb: "watch", resource: type.plural, code: "error" });
      throw error;
    }
    this.requests?.inc({
      verb: "watch",
      resource: type.plural,
      code: response.status === 200 ? "started" : String(response.status),
    });
    if (response.status !== 200) {
      clearTimeout(idle);
      throw new KubeApiError("WATCH", path, response.status, statusOf(await response.text()));
    }
    const body = response.body;
    const done = (async () => {
      if (!body) return;
      const decoder = new TextDecoder();
      let buffered = "";
      try {
        for await (const chunk of body as AsyncIterable<Uint8Array>) {
          touch();
          buffered += decoder.decode(chunk, { stream: true });
          let newline = buffered.indexOf("\n");
          while (newline >= 0) {
            const line = buffered.slice(0, newline).trim();
            buffered = buffered.slice(newline + 1);
            if (line !== "") onEvent(JSON.parse(line) as WatchEvent<T>);
            newline = buffered.indexOf("\n");
          }
        }
      } catch (error) {
        // Our own abort (stop, or idle) ends the watch quietly; anything else is a failure.
        if (!controller.signal.aborted) throw error;
        if (
          controller.signal.reason instanceof DOMException &&
          controller.signal.reason.name === "TimeoutError"
        ) {
          throw controller.signal.reason;
        }
      } finally {
        clearTimeout(idle);
      }
    })();
    return { done, abort: () => controller.abort() };
  }

  async delete(type: ResourceType, namespace: string | undefined, name: string): Promise<void> {
    try {
      await this.send("delete", type, "DELETE", objectPath(type, namespace, name));
    } catch (error) {
      if (!(error instanceof KubeApiError && error.status === 404)) throw error;
    }
  }
}
