/**
 * Writing a pair's children: server-side apply of what differs from the cache, removal of what the
 * spec no longer asks for, and a refusal to take over an object someone else owns under our name.
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import type { PingPongPair } from "../api/types.ts";
import type { Informer } from "../runtime/informer.ts";
import { isConflict, type KubeClient } from "../runtime/kube-client.ts";
import { resourceTypeOf } from "../runtime/resources.ts";

/** A child exists under our name but belongs to someone else: we will not overwrite it. */
export class ChildConflictError extends Error {
  override readonly name = "ChildConflictError";
}

/**
 * The cache was behind the API server when the reconcile read it: what it would write is based on an
 * older object than the one stored. Nothing was written; the watch brings the newer object, and the
 * next reconcile decides again from it.
 */
export class StaleCacheError extends Error {
  override readonly name = "StaleCacheError";
}

/**
 * Server-side apply of an object built from a cached copy that carries the copy's resourceVersion: a
 * Conflict means the API server holds a newer one, and becomes StaleCacheError.
 */
export async function applyOverCached(
  client: KubeClient,
  object: KubernetesObject,
  subresource?: "status",
): Promise<void> {
  try {
    await client.apply(object, subresource);
  } catch (error) {
    if (!isConflict(error)) throw error;
    const { namespace = "", name = "" } = object.metadata ?? {};
    throw new StaleCacheError(`${object.kind ?? "object"} ${namespace}/${name} changed since it was cached`);
  }
}

/** Reads from informer caches: the reconciler only looks objects up. */
export type CacheLookup<T extends KubernetesObject> = Pick<Informer<T>, "get">;

export interface PairCaches {
  readonly pairs: CacheLookup<PingPongPair>;
  /** Child caches by kind ("Secret", "Deployment", ...). */
  readonly children: ReadonlyMap<string, CacheLookup<KubernetesObject>>;
}

/** Whether every field of `desired` is present with the same value in `live` (arrays element-wise). */
export function containsAll(live: unknown, desired: unknown): boolean {
  if (desired === null || typeof desired !== "object") return live === desired;
  if (Array.isArray(desired)) {
    return (
      Array.isArray(live) &&
      live.length === desired.length &&
      desired.every((d, i) => containsAll(live[i], d))
    );
  }
  if (live === null || typeof live !== "object" || Array.isArray(live)) return false;
  const record = live as Record<string, unknown>;
  return Object.entries(desired).every(
    ([key, value]) => value === undefined || containsAll(record[key], value),
  );
}

/** Why `existing` (found under a child's name, outside our cache) may not be taken over, if it may not. */
export function strangerConflict(
  existing: KubernetesObject | undefined,
  pair: PingPongPair,
): string | undefined {
  if (!existing) return undefined;
  const ownerUid = existing.metadata?.ownerReferences?.find((o) => o.controller)?.uid;
  if (ownerUid === pair.metadata?.uid) return undefined;
  const { namespace = "", name = "" } = existing.metadata ?? {};
  return `${existing.kind ?? "object"} ${namespace}/${name} already exists and is not managed by this PingPongPair; delete or rename it`;
}

export class ChildWriter {
  private readonly client: KubeClient;
  private readonly caches: PairCaches;

  constructor(client: KubeClient, caches: PairCaches) {
    this.client = client;
    this.caches = caches;
  }

  cached(kind: string, namespace: string, name: string): KubernetesObject | undefined {
    return this.caches.children.get(kind)?.get(namespace, name);
  }

  /**
   * Applies `desired` unless the cached child already has it; refuses to take over a stranger's object.
   * `fromCache`: `desired` was derived from the cached child (a Secret holding minted certificates), so
   * it must not be written over a newer one: the write carries the cached resourceVersion, and a child
   * that exists but is not yet cached is left alone. Either throws StaleCacheError.
   */
  async ensure(
    pair: PingPongPair,
    desired: KubernetesObject,
    options: { fromCache?: boolean } = {},
  ): Promise<void> {
    const namespace = desired.metadata?.namespace ?? "";
    const name = desired.metadata?.name ?? "";
    const cached = this.cached(desired.kind ?? "", namespace, name);
    if (cached && containsAll(cached, desired)) return;
    if (!cached) {
      // Not in our cache (which holds only objects we label): make sure no one else's object has the name.
      const type = resourceTypeOf(desired.apiVersion, desired.kind);
      const existing = await this.client.get(type, namespace, name);
      const conflict = strangerConflict(existing && { kind: desired.kind, ...existing }, pair);
      if (conflict) throw new ChildConflictError(conflict);
      if (existing && options.fromCache) {
        throw new StaleCacheError(
          `${desired.kind ?? "object"} ${namespace}/${name} exists but is not cached yet`,
        );
      }
    }
    const resourceVersion = options.fromCache ? cached?.metadata?.resourceVersion : undefined;
    if (!resourceVersion) {
      await this.client.apply(desired);
      return;
    }
    const object = structuredClone(desired);
    (object.metadata ??= {}).resourceVersion = resourceVersion;
    await applyOverCached(this.client, object);
  }

  /** Deletes a child the spec no longer asks for, if it exists. */
  async remove(kind: string, namespace: string, name: string): Promise<void> {
    const cached = this.cached(kind, namespace, name);
    if (!cached) return;
    await this.client.delete(resourceTypeOf(cached.apiVersion, cached.kind), namespace, name);
  }
}
