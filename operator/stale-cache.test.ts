/**
 * A reconcile that reads a cache the API server has moved past (its own last writes not yet
 * delivered by the watch) writes nothing and records nothing: no second CA minted over the first,
 * no status written over a newer one, no Event for a transition already reported. Against the real
 * API server, with caches frozen at a chosen moment.
 */
import type { CoreV1Event, KubernetesObject } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../controlplane/testing.ts";
import type { PingPongPair } from "./api/types.ts";
import { childTypes } from "./operator.ts";
import type { PairCaches } from "./pingpongpair/apply.ts";
import { childSelector } from "./pingpongpair/names.ts";
import { createReconciler } from "./pingpongpair/reconcile.ts";
import { WorkerPoolMinter } from "./pki/minter.ts";
import type { ReconcileResult } from "./runtime/controller.ts";
import { KubeEventRecorder } from "./runtime/events.ts";
import { KubeClient } from "./runtime/kube-client.ts";
import { resources } from "./runtime/resources.ts";
import { OperatorEnvironment, operatorNamespace, quietLogger } from "./testing/environment.ts";

let env: OperatorEnvironment;
let namespace: string;
let client: KubeClient;
const minter = new WorkerPoolMinter();

beforeAll(async () => {
  env = await OperatorEnvironment.start();
  namespace = await env.namespace("stale");
  client = new KubeClient(env.operatorConnection);
});
afterAll(async () => {
  await minter.close();
  await OperatorEnvironment.stopIfStarted(env);
});

/** What an informer cache would hold at one moment: the pair and its children, by kind. */
interface Snapshot {
  readonly pair: PingPongPair | undefined;
  readonly children: ReadonlyMap<string, readonly KubernetesObject[]>;
}

async function snapshot(name: string): Promise<Snapshot> {
  const children = new Map<string, KubernetesObject[]>();
  for (const type of childTypes) {
    const list = await client.list<KubernetesObject>(type, namespace, childSelector);
    children.set(type.kind, list.items);
  }
  return { pair: await client.get<PingPongPair>(resources.pingPongPair, namespace, name), children };
}

function caches(view: Snapshot): PairCaches {
  const find = (items: readonly KubernetesObject[]) => ({
    get: (ns: string, name: string) =>
      items.find((o) => o.metadata?.namespace === ns && o.metadata.name === name),
  });
  return {
    pairs: find(view.pair ? [view.pair] : []),
    children: new Map([...view.children].map(([kind, items]) => [kind, find(items)])),
  };
}

const recorded: string[] = [];

async function reconcile(name: string, view: Snapshot): Promise<ReconcileResult> {
  const run = createReconciler({
    client,
    caches: caches(view),
    minter,
    recorder: {
      record: (_object, _type, reason) => {
        recorded.push(reason);
      },
    },
    defaultImage: "pingpong-operator:test",
    operatorNamespace,
    rotationStepMs: 1_000,
    healthIntervalMs: 1_000,
    readings: () => ({ pods: [], running: { ponger: 0, pinger: 0 } }),
  });
  return run({ key: `${namespace}/${name}`, id: "test", reason: "test", log: quietLogger("reconcile") });
}

/** The resourceVersions of the pair and its Secrets: any write to them changes one. */
function versions(view: Snapshot, only?: "Secret"): Record<string, string | undefined> {
  const secrets = view.children.get("Secret") ?? [];
  return Object.fromEntries(
    [...(only ? [] : [view.pair]), ...secrets].map((o) => [
      `${o?.kind ?? ""}/${o?.metadata?.name ?? ""}`,
      o?.metadata?.resourceVersion,
    ]),
  );
}

describe("a reconcile from a cache behind the API server", () => {
  it("mints nothing over the Secrets, writes no status and records no Event twice", async () => {
    // A drill too far ahead is refused: a status transition with an Event, without any pod.
    const until = new Date(Date.now() + 48 * 3_600_000).toISOString();
    await env.createPair(namespace, "stale", { drill: { abortRatio: 0.5, until } });
    const created = await snapshot("stale");

    expect(await reconcile("stale", created)).not.toHaveProperty("outcome");
    expect([...recorded].sort()).toEqual([
      "DrillRefused",
      "IssuedCA",
      "IssuedCertificate",
      "IssuedCertificate",
    ]);
    const written = await snapshot("stale");
    expect(written.pair?.status?.drill?.state).toBe("Refused");
    expect(written.children.get("Secret")).toHaveLength(3);

    // The view from before the first reconcile's writes, as a reconcile queued meanwhile sees it.
    recorded.length = 0;
    expect(await reconcile("stale", created)).toMatchObject({
      outcome: "stale_cache",
      requeueAfterMs: 1_000,
    });
    // Secrets current, the pair's status not yet: the status write is refused.
    expect(await reconcile("stale", { ...written, pair: created.pair })).toMatchObject({
      outcome: "stale_cache",
    });
    expect(recorded).toEqual([]);
    expect(versions(await snapshot("stale"))).toEqual(versions(written));

    // Caught up (the Deployments' status has moved on meanwhile, so status may be written): the
    // certificates are kept, and no Event repeats.
    expect(await reconcile("stale", await snapshot("stale"))).not.toHaveProperty("outcome");
    expect(recorded).toEqual([]);
    expect(versions(await snapshot("stale"), "Secret")).toEqual(versions(written, "Secret"));
  });

  it("a Secret cached at an older resourceVersion is not written over", async () => {
    await env.createPair(namespace, "older");
    await reconcile("older", await snapshot("older"));
    const first = await snapshot("older");
    // Someone (a second reconcile, a user) changes the ponger's Secret after the cache saw it.
    await client.mergePatch(resources.secret, namespace, "older-ponger-tls", {
      metadata: { annotations: { touched: "yes" } },
    });
    const touched = await snapshot("older");
    // The cache still holds it as first written, and a spec asking for new leaves.
    const rotate = { ...first.pair, spec: { ...first.pair?.spec, tls: { rotate: "now" } } } as PingPongPair;
    recorded.length = 0;
    expect(await reconcile("older", { ...first, pair: rotate })).toMatchObject({ outcome: "stale_cache" });
    expect(versions(await snapshot("older"))).toEqual(versions(touched));
    expect(recorded).toEqual([]);
  });
});

describe("Events", () => {
  it("a repeat recorded while the first is still being created bumps its count, not a second Event", async () => {
    const pair = await env.createPair(namespace, "repeats");
    const recorder = new KubeEventRecorder(client, quietLogger("events"));
    recorder.record(pair, "Normal", "Repeated", "said twice at once");
    recorder.record(pair, "Normal", "Repeated", "said twice at once");
    const events = await eventually("the Event counted twice", async () => {
      const list = await env.admin.list<CoreV1Event>(resources.event, namespace);
      const found = list.items.filter((e) => e.reason === "Repeated");
      return found.some((e) => e.count === 2) ? found : undefined;
    });
    expect(events).toHaveLength(1);
  });
});
