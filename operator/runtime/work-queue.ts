/**
 * A work queue of object keys ("namespace/name"), with the guarantees controllers rely on (as in
 * client-go's workqueue):
 * - a key waiting in the queue is there once, however often it is added;
 * - a key is handed to one worker at a time: added while being processed, it waits until done();
 * - failures back off per key, exponentially with jitter; forget() resets that after a success;
 * - addAfter() schedules a key for later (requeueAfter), keeping only the earliest time per key.
 * Each add says why (an informer event, a requeue, a retry); a key keeps the first reason given while
 * it waits, and reasonOf() tells the worker holding it why it runs (kube-runtime's ReconcileReason).
 */

export interface BackoffOptions {
  readonly baseMs: number;
  readonly maxMs: number;
  /** Fraction of the delay added at random, so keys that failed together do not retry together. */
  readonly jitter: number;
}

export const defaultBackoff: BackoffOptions = { baseMs: 200, maxMs: 5 * 60_000, jitter: 0.2 };

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly dirty = new Set<string>();
  /** Why each waiting key was added (the first reason since it started waiting). */
  private readonly pendingReasons = new Map<string, string>();
  /** Why each key being processed runs. */
  private readonly activeReasons = new Map<string, string>();
  private readonly processing = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly delayed = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly waiters: ((key: string | undefined) => void)[] = [];
  private readonly backoff: BackoffOptions;
  private readonly random: () => number;
  private shuttingDown = false;

  constructor(backoff: BackoffOptions = defaultBackoff, random: () => number = Math.random) {
    this.backoff = backoff;
    this.random = random;
  }

  /** Keys waiting to be processed (not counting those in progress or scheduled for later). */
  get depth(): number {
    return this.queue.length;
  }

  get inProgress(): number {
    return this.processing.size;
  }

  add(key: string, reason = "requested"): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (!this.pendingReasons.has(key)) this.pendingReasons.set(key, reason);
    if (this.processing.has(key)) return; // done() queues it again
    const waiter = this.waiters.shift();
    if (waiter) {
      this.take(key);
      waiter(key);
    } else {
      this.queue.push(key);
    }
  }

  /** Adds `key` after `delayMs`; an earlier pending schedule for the key wins. */
  addAfter(key: string, delayMs: number, reason = "requeued"): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key, reason);
      return;
    }
    const at = Date.now() + delayMs;
    const pending = this.delayed.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    // setTimeout cannot wait longer than about 24.8 days; a longer wait is re-armed when it fires.
    const timer = setTimeout(
      () => {
        this.delayed.delete(key);
        const left = at - Date.now();
        if (left > 0) this.addAfter(key, left, reason);
        else this.add(key, reason);
      },
      Math.min(delayMs, 2 ** 31 - 1),
    );
    timer.unref();
    this.delayed.set(key, { at, timer });
  }

  /** Adds `key` after its backoff delay, which doubles with each failure until forget(). */
  addRateLimited(key: string): number {
    const failures = this.failures.get(key) ?? 0;
    this.failures.set(key, failures + 1);
    const delay = Math.min(this.backoff.maxMs, this.backoff.baseMs * 2 ** failures);
    const withJitter = Math.round(delay * (1 + this.backoff.jitter * this.random()));
    this.addAfter(key, withJitter, `retry ${failures + 1} after an error`);
    return withJitter;
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  failuresOf(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** The next key to process, waiting for one; undefined once the queue shuts down. */
  get(): Promise<string | undefined> {
    const key = this.queue.shift();
    if (key !== undefined) {
      this.take(key);
      return Promise.resolve(key);
    }
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Why `key`, which a worker holds, runs now. */
  reasonOf(key: string): string {
    return this.activeReasons.get(key) ?? "requested";
  }

  private take(key: string): void {
    this.dirty.delete(key);
    this.processing.add(key);
    this.activeReasons.set(key, this.pendingReasons.get(key) ?? "requested");
    this.pendingReasons.delete(key);
  }

  /** Marks `key` processed; if it was added meanwhile, it is queued again now. */
  done(key: string): void {
    this.processing.delete(key);
    this.activeReasons.delete(key);
    if (this.dirty.has(key)) {
      this.dirty.delete(key);
      this.add(key, this.pendingReasons.get(key));
    }
  }

  /** Stops handing out keys; workers waiting in get() receive undefined. */
  shutDown(): void {
    this.shuttingDown = true;
    for (const { timer } of this.delayed.values()) clearTimeout(timer);
    this.delayed.clear();
    for (const waiter of this.waiters.splice(0)) waiter(undefined);
  }
}
