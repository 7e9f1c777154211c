/**
 * An informer: lists a resource, then watches it from the list's resourceVersion, keeping a cache and
 * telling handlers what changed. It never gives up: a failed list or watch is retried with backoff,
 * a watch that ends normally is resumed from the last resourceVersion (bookmarks keep that fresh),
 * and "410 Gone" (the version is too old) means list again. Lifecycle changes are reported as typed
 * events, which the operator logs and counts.
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import { errorMessage } from "../../lib/logger.ts";
import { KubeApiError, type KubeClient, type WatchEvent, type WatchHandle } from "./kube-client.ts";
import type { ResourceType } from "./resources.ts";

export type InformerEvent =
  | { type: "listed"; count: number }
  | { type: "watching"; resourceVersion: string }
  | { type: "gone"; resourceVersion: string }
  | { type: "error"; stage: "list" | "watch"; error: string; retryInMs: number };

export type ChangeHandler<T> = (change: "added" | "modified" | "deleted", object: T) => void;

export interface InformerOptions<T extends KubernetesObject> {
  readonly client: KubeClient;
  readonly type: ResourceType;
  /** Watch one namespace; all namespaces when unset. */
  readonly namespace?: string | undefined;
  readonly labelSelector?: string | undefined;
  readonly onChange: ChangeHandler<T>;
  readonly onLifecycle?: (event: InformerEvent) => void;
  /** Runs on every object before it is cached, e.g. to drop what the cache does not need. */
  readonly transform?: (object: T) => T;
}

export function objectKey(object: KubernetesObject): string {
  return `${object.metadata?.namespace ?? ""}/${object.metadata?.name ?? ""}`;
}

/** Drops metadata.managedFields: it is often the largest part of an object and controllers never read it. */
export function withoutManagedFields<T extends KubernetesObject>(object: T): T {
  if (!object.metadata?.managedFields) return object;
  const { managedFields: _dropped, ...metadata } = object.metadata;
  return { ...object, metadata };
}

const backoffBaseMs = 500;
const backoffMaxMs = 30_000;

export class Informer<T extends KubernetesObject> {
  readonly type: ResourceType;
  private readonly options: InformerOptions<T>;
  private readonly cache = new Map<string, T>();
  private resourceVersion = "";
  private running = false;
  private current: WatchHandle | undefined;
  /** An ERROR event ended the current watch: why, for the retry after it. */
  private watchError: Error | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private syncedResolve: (() => void) | undefined;
  readonly synced: Promise<void>;

  constructor(options: InformerOptions<T>) {
    this.options = options;
    this.type = options.type;
    this.synced = new Promise((resolve) => (this.syncedResolve = resolve));
  }

  get(namespace: string, name: string): T | undefined {
    return this.cache.get(`${namespace}/${name}`);
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  get size(): number {
    return this.cache.size;
  }

  /** Starts listing and watching; `synced` resolves after the first successful list. */
  start(): void {
    if (this.running) return;
    this.running = true;
    void this.cycle();
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.retryTimer);
    this.current?.abort();
  }

  private store(object: T): T {
    return this.options.transform ? this.options.transform(object) : object;
  }

  private async cycle(): Promise<void> {
    if (!this.running) return;
    if (this.resourceVersion === "") {
      try {
        await this.relist();
      } catch (error) {
        this.retry("list", error);
        return;
      }
    }
    try {
      const query: Record<string, string> = {
        resourceVersion: this.resourceVersion,
        allowWatchBookmarks: "true",
        // Spread reconnects out, as client-go does: between 5 and 10 minutes.
        timeoutSeconds: String(300 + Math.floor(Math.random() * 300)),
      };
      if (this.options.labelSelector) query.labelSelector = this.options.labelSelector;
      // Bookmarks arrive about once a minute; a watch silent for much longer is presumed dead.
      const handle = await this.options.client.watch<T>(this.type, this.options.namespace, query, (event) => {
        this.onWatchEvent(event);
      });
      this.current = handle;
      this.options.onLifecycle?.({ type: "watching", resourceVersion: query.resourceVersion ?? "" });
      handle.done.then(
        () => {
          this.onWatchDone(undefined);
        },
        (error: unknown) => {
          this.onWatchDone(error);
        },
      );
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 410) {
        this.options.onLifecycle?.({ type: "gone", resourceVersion: this.resourceVersion });
        this.resourceVersion = "";
        void this.cycle();
        return;
      }
      this.retry("watch", error);
    }
  }

  private async relist(): Promise<void> {
    const { items, resourceVersion } = await this.options.client.list<T>(
      this.type,
      this.options.namespace,
      this.options.labelSelector,
    );
    const seen = new Set<string>();
    for (const item of items) {
      const key = objectKey(item);
      seen.add(key);
      const previous = this.cache.get(key);
      const object = this.store(item);
      this.cache.set(key, object);
      if (!previous) this.options.onChange("added", object);
      else if (previous.metadata?.resourceVersion !== object.metadata?.resourceVersion)
        this.options.onChange("modified", object);
    }
    for (const [key, object] of this.cache) {
      if (!seen.has(key)) {
        this.cache.delete(key);
        this.options.onChange("deleted", object);
      }
    }
    this.resourceVersion = resourceVersion;
    this.failures = 0;
    this.options.onLifecycle?.({ type: "listed", count: items.length });
    this.syncedResolve?.();
  }

  private onWatchEvent({ type: phase, object }: WatchEvent<T>): void {
    if (phase === "ERROR") {
      // Like client-go's reflector: an ERROR event ends this watch. 410 Gone lists again at once;
      // anything else is a failure, retried with backoff and reported.
      if (object.code === 410) {
        this.options.onLifecycle?.({ type: "gone", resourceVersion: this.resourceVersion });
        this.resourceVersion = "";
      } else {
        this.watchError = new Error(
          `watch ERROR event ${object.code ?? "without a code"}: ${object.reason ?? ""} ${object.message ?? ""}`.trim(),
        );
      }
      this.current?.abort();
      return;
    }
    const version = object.metadata?.resourceVersion;
    if (version) this.resourceVersion = version;
    if (phase === "BOOKMARK") return;
    const key = objectKey(object);
    if (phase === "DELETED") {
      const cached = this.cache.get(key);
      this.cache.delete(key);
      this.options.onChange("deleted", cached ?? this.store(object));
      return;
    }
    const previous = this.cache.get(key);
    if (previous?.metadata?.resourceVersion === version) return;
    const stored = this.store(object);
    this.cache.set(key, stored);
    this.options.onChange(previous ? "modified" : "added", stored);
  }

  private onWatchDone(ended: unknown): void {
    const error = ended ?? this.watchError;
    this.watchError = undefined;
    this.current = undefined;
    if (!this.running) return;
    if (error !== undefined) {
      this.retry("watch", error);
      return;
    }
    this.failures = 0;
    void this.cycle();
  }

  private retry(stage: "list" | "watch", error: unknown): void {
    if (!this.running) return;
    const delay = Math.min(backoffMaxMs, backoffBaseMs * 2 ** this.failures) * (1 + Math.random() * 0.2);
    this.failures++;
    this.options.onLifecycle?.({
      type: "error",
      stage,
      error: errorMessage(error),
      retryInMs: Math.round(delay),
    });
    this.retryTimer = setTimeout(() => void this.cycle(), delay);
  }
}
