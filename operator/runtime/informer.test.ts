/**
 * The informer's list/watch cycle, driven by a scripted stand-in for the API client: the real API
 * server does not send ERROR events on demand. (operator/*.test.ts run informers against a real one.)
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { eventually } from "../../controlplane/testing.ts";
import { Informer, type InformerEvent } from "./informer.ts";
import type { KubeClient, ListResult, WatchEvent, WatchHandle } from "./kube-client.ts";
import { resources } from "./resources.ts";

type Obj = KubernetesObject;

const object = (name: string, resourceVersion: string): Obj => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name, namespace: "ns", resourceVersion },
});

/** Lists what `objects` holds; each watch is recorded so the test can send events and end it. */
class ScriptedClient {
  objects: Obj[] = [];
  listVersion = "10";
  lists = 0;
  readonly watches: { from: string; send: (event: WatchEvent<Obj>) => void; aborted: boolean }[] = [];

  list(): Promise<ListResult<Obj>> {
    this.lists++;
    return Promise.resolve({ items: [...this.objects], resourceVersion: this.listVersion });
  }

  watch(
    _type: unknown,
    _namespace: unknown,
    query: Record<string, string>,
    onEvent: (event: WatchEvent<Obj>) => void,
  ): Promise<WatchHandle> {
    let end: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (end = resolve));
    const watch = { from: query.resourceVersion ?? "", send: onEvent, aborted: false };
    this.watches.push(watch);
    return Promise.resolve({
      done,
      abort: () => {
        watch.aborted = true;
        end();
      },
    });
  }
}

function start(client: ScriptedClient) {
  const changes: string[] = [];
  const lifecycle: InformerEvent[] = [];
  const informer = new Informer<Obj>({
    client: client as unknown as KubeClient,
    type: resources.configMap,
    onChange: (change, o) => changes.push(`${change} ${o.metadata?.name} ${o.metadata?.resourceVersion}`),
    onLifecycle: (event) => lifecycle.push(event),
  });
  informer.start();
  return { informer, changes, lifecycle };
}

const error = (code: number, message: string): WatchEvent<Obj> => ({
  type: "ERROR",
  object: { kind: "Status", code, message, reason: code === 410 ? "Expired" : "InternalError" },
});

describe("Informer", () => {
  it("lists, then watches from the list's version, and keeps its cache from the events", async () => {
    const client = new ScriptedClient();
    client.objects = [object("a", "5")];
    const { informer, changes } = start(client);
    await informer.synced;
    await eventually("a watch", () => Promise.resolve(client.watches[0]));
    expect(client.watches[0]?.from).toBe("10");
    const send = client.watches[0]?.send ?? (() => undefined);
    send({ type: "ADDED", object: object("b", "11") });
    send({ type: "MODIFIED", object: object("a", "12") });
    send({ type: "MODIFIED", object: object("a", "12") }); // the same version again: no change
    send({ type: "DELETED", object: object("b", "13") });
    expect(changes).toEqual(["added a 5", "added b 11", "modified a 12", "deleted b 11"]);
    expect(informer.list().map((o) => o.metadata?.name)).toEqual(["a"]);
    informer.stop();
  });

  it("lists again at once after an ERROR event 410 Gone", async () => {
    const client = new ScriptedClient();
    const { informer, lifecycle } = start(client);
    await eventually("a watch", () => Promise.resolve(client.watches[0]));
    client.listVersion = "20";
    client.watches[0]?.send(error(410, "too old resource version: 10 (15)"));
    await eventually("a second watch", () => Promise.resolve(client.watches[1]));
    expect(client.watches[0]?.aborted).toBe(true);
    expect(client.lists).toBe(2);
    expect(client.watches[1]?.from).toBe("20");
    expect(lifecycle.map((e) => e.type)).toContain("gone");
    informer.stop();
  });

  it("reports any other ERROR event, ends that watch and watches again after a backoff", async () => {
    const client = new ScriptedClient();
    const { informer, lifecycle } = start(client);
    await eventually("a watch", () => Promise.resolve(client.watches[0]));
    client.watches[0]?.send(error(500, "etcd is unavailable"));
    expect(client.watches[0]?.aborted).toBe(true);
    const reported = await eventually("the error reported", () =>
      Promise.resolve(lifecycle.find((e) => e.type === "error")),
    );
    expect(reported).toMatchObject({
      stage: "watch",
      error: "watch ERROR event 500: InternalError etcd is unavailable",
    });
    await eventually("a second watch", () => Promise.resolve(client.watches[1]));
    // Not a 410: the cache is still good, the watch resumes from where it was.
    expect(client.lists).toBe(1);
    expect(client.watches[1]?.from).toBe("10");
    informer.stop();
  });
});
