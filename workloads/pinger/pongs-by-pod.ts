/**
 * Pongs counted per answering ponger pod, for /status and the ping_pongs_total series. Pod names come
 * from the ponger (a header), so the set is bounded: a pod not heard from for `expireMs` is dropped (a
 * rollout replaced it), and past `maxPods` the least recently heard one is. What is dropped is
 * reported, so its metrics series can go too.
 */
export class PongsByPod {
  private readonly pods = new Map<string, { count: number; lastAt: number }>();
  private readonly maxPods: number;
  private readonly expireMs: number;

  constructor(maxPods = 64, expireMs = 10 * 60_000) {
    this.maxPods = maxPods;
    this.expireMs = expireMs;
  }

  /** Counts a pong from `pod`; returns the pods dropped to make room or because they expired. */
  add(pod: string, at: number): string[] {
    const entry = this.pods.get(pod);
    this.pods.delete(pod);
    this.pods.set(pod, { count: (entry?.count ?? 0) + 1, lastAt: at });
    const dropped = this.expire(at);
    while (this.pods.size > this.maxPods) {
      const oldest = this.pods.keys().next().value;
      if (oldest === undefined) break;
      this.pods.delete(oldest);
      dropped.push(oldest);
    }
    return dropped;
  }

  /** Drops the pods not heard from since `now - expireMs`, least recently heard first. */
  expire(now: number): string[] {
    const dropped: string[] = [];
    for (const [pod, { lastAt }] of this.pods) {
      if (now - lastAt < this.expireMs) break; // the rest were heard from later
      this.pods.delete(pod);
      dropped.push(pod);
    }
    return dropped;
  }

  counts(): Record<string, number> {
    return Object.fromEntries([...this.pods].map(([pod, { count }]) => [pod, count]));
  }
}
