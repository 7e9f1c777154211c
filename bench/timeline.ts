/**
 * Where apply -> Ready goes, pair by pair: the bench polls the pairs, their Deployments and pods
 * (every 100 ms) and the pingers' /status, and notes when each phase a user waits through was first
 * seen, on this process's clock. API timestamps have a resolution of a second; polling costs at
 * most 100 ms of resolution and three lists per tick.
 */
import type { V1Deployment, V1Pod } from "@kubernetes/client-node";
import type { PingPongPair } from "../operator/api/types.ts";
import type { KubeClient } from "../operator/runtime/kube-client.ts";
import { resources } from "../operator/runtime/resources.ts";
import { report, summarize } from "./report.ts";

/** In the order a user waits through them. */
export const phases = [
  "certificates issued",
  "Deployments written",
  "pods scheduled",
  "containers started",
  "pods Ready",
  "first pong seen by a pinger",
  "status.ping written",
  "PingHealthy True",
  "Ready",
] as const;
export type Phase = (typeof phases)[number];

const instance = "app.kubernetes.io/instance";
const isTrue = (conditions: readonly { type: string; status: string }[] | undefined, type: string) =>
  conditions?.some((c) => c.type === type && c.status === "True") === true;

/** Which phases a pair has reached, judged from one poll of its objects. */
export function reached(
  pair: PingPongPair | undefined,
  deployments: readonly V1Deployment[],
  pods: readonly V1Pod[],
  pinged: boolean,
): Set<Phase> {
  const done = new Set<Phase>();
  const conditions = pair?.status?.conditions;
  const both = (check: (p: V1Pod) => boolean) =>
    ["ponger", "pinger"].every((component) =>
      pods.some((p) => p.metadata?.labels?.["app.kubernetes.io/component"] === component && check(p)),
    );
  if (isTrue(conditions, "CertificatesReady")) done.add("certificates issued");
  if (deployments.length >= 2) done.add("Deployments written");
  if (both((p) => isTrue(p.status?.conditions, "PodScheduled"))) done.add("pods scheduled");
  if (both((p) => p.status?.containerStatuses?.some((c) => c.state?.running) === true))
    done.add("containers started");
  if (both((p) => isTrue(p.status?.conditions, "Ready"))) done.add("pods Ready");
  if (pinged) done.add("first pong seen by a pinger");
  if ((pair?.status?.ping?.sent ?? 0) > 0) done.add("status.ping written");
  if (isTrue(conditions, "PingHealthy")) done.add("PingHealthy True");
  if (isTrue(conditions, "Ready")) done.add("Ready");
  return done;
}

export class Timeline {
  private readonly admin: KubeClient;
  private readonly namespace: string;
  /** Pair -> when it was applied and when each phase was first seen (performance.now()). */
  private readonly pairs = new Map<string, { applied: number; seen: Map<Phase, number> }>();
  private readonly pinged = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;

  constructor(admin: KubeClient, namespace: string) {
    this.admin = admin;
    this.namespace = namespace;
  }

  /** Call right before applying `pair`. */
  applied(pair: string): void {
    this.pairs.set(pair, { applied: performance.now(), seen: new Map() });
    this.timer ??= setInterval(() => {
      this.polling ??= this.poll().finally(() => (this.polling = undefined));
    }, 100);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.polling;
  }

  /** Seconds from apply to each phase, for every pair that reached it. */
  durations(names: readonly string[]): Map<Phase, number[]> {
    const result = new Map<Phase, number[]>(phases.map((p) => [p, []]));
    for (const name of names) {
      const pair = this.pairs.get(name);
      if (!pair) continue;
      for (const [phase, at] of pair.seen) result.get(phase)?.push((at - pair.applied) / 1000);
    }
    return result;
  }

  /** Prints the median and worst time from apply to each phase over `names`. */
  print(title: string, names: readonly string[]): void {
    console.log(`  ${title}: seconds from apply, median / worst over ${names.length}`);
    let previous = 0;
    for (const [phase, seconds] of this.durations(names)) {
      const { p50, max } = summarize(seconds);
      report(
        `    ${phase}`,
        `${p50.toFixed(2)} / ${max.toFixed(2)}`,
        "s",
        `+${(p50 - previous).toFixed(2)} s${seconds.length < names.length ? ` (${seconds.length} reached it)` : ""}`,
      );
      if (!Number.isNaN(p50)) previous = p50;
    }
  }

  private async poll(): Promise<void> {
    const open = [...this.pairs].filter(([, p]) => !p.seen.has("Ready"));
    if (open.length === 0) return;
    const [pairs, deployments, pods] = await Promise.all([
      this.admin.list<PingPongPair>(resources.pingPongPair, this.namespace),
      this.admin.list<V1Deployment>(resources.deployment, this.namespace),
      this.admin.list<V1Pod>(resources.pod, this.namespace),
    ]);
    const now = performance.now();
    await Promise.all(
      open.map(async ([name, state]) => {
        const own = <T extends { metadata?: { labels?: Record<string, string> } }>(items: T[]) =>
          items.filter((i) => i.metadata?.labels?.[instance] === name);
        const ownPods = own(pods.items);
        if (!this.pinged.has(name)) {
          const pinger = ownPods.find(
            (p) => p.metadata?.labels?.["app.kubernetes.io/component"] === "pinger" && p.status?.podIP,
          );
          if (pinger && (await pongs(pinger)) > 0) this.pinged.add(name);
        }
        const pair = pairs.items.find((p) => p.metadata?.name === name);
        for (const phase of reached(pair, own(deployments.items), ownPods, this.pinged.has(name)))
          if (!state.seen.has(phase)) state.seen.set(phase, now);
      }),
    );
  }
}

/** Pongs a pinger pod has had (its /status), 0 while it cannot be read. */
async function pongs(pod: V1Pod): Promise<number> {
  try {
    const response = await fetch(`http://${pod.status?.podIP ?? ""}:9090/status`, {
      signal: AbortSignal.timeout(500),
    });
    const status = (await response.json()) as { succeeded?: number };
    return status.succeeded ?? 0;
  } catch {
    return 0;
  }
}
