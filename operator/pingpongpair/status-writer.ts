/**
 * Writing a pair's status: only when it differs from what the cache holds, through the status
 * subresource with server-side apply, and only over the pair the status was built from: the write
 * carries the cached resourceVersion, so a reconcile that read a stale cache neither writes an older
 * view nor records the Events of a transition another reconcile already reported.
 */
import { isDeepStrictEqual } from "node:util";
import { apiVersion, kind, type PingPongPair, type PingPongPairStatus } from "../api/types.ts";
import type { KubeClient } from "../runtime/kube-client.ts";
import { applyOverCached } from "./apply.ts";

/**
 * Whether `status` differs from the pair's. Structural: the API server returns fields in its own
 * order. The JSON round trip drops undefined fields, which the server never stores.
 */
export function statusChanged(pair: PingPongPair, status: PingPongPairStatus): boolean {
  return !isDeepStrictEqual(JSON.parse(JSON.stringify(status)), pair.status ?? {});
}

export async function writeStatus(
  client: KubeClient,
  pair: PingPongPair,
  status: PingPongPairStatus,
): Promise<boolean> {
  if (!statusChanged(pair, status)) return false;
  const { name = "", namespace = "", resourceVersion } = pair.metadata ?? {};
  const object = { apiVersion, kind, metadata: { name, namespace, resourceVersion }, status };
  await applyOverCached(client, object, "status");
  return true;
}
