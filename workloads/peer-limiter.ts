/**
 * At most one report per peer per interval, so a client retrying a refused handshake in a loop (or a
 * thousand of them) cannot flood the log. Remembers a bounded number of peers, forgetting the least
 * recently reported first.
 */
export class PeerLimiter {
  private readonly intervalMs: number;
  private readonly maxPeers: number;
  private readonly peers = new Map<string, { reportedAt: number; held: number }>();

  constructor(intervalMs = 60_000, maxPeers = 1024) {
    this.intervalMs = intervalMs;
    this.maxPeers = maxPeers;
  }

  /**
   * Whether to report about `peer` now: the number of reports held back since the last one (0 the
   * first time), or undefined to stay quiet.
   */
  take(peer: string, now = Date.now()): number | undefined {
    const entry = this.peers.get(peer);
    if (entry && now - entry.reportedAt < this.intervalMs) {
      entry.held++;
      return undefined;
    }
    const held = entry?.held ?? 0;
    this.peers.delete(peer);
    this.peers.set(peer, { reportedAt: now, held: 0 });
    if (this.peers.size > this.maxPeers) {
      const oldest = this.peers.keys().next().value;
      if (oldest !== undefined) this.peers.delete(oldest);
    }
    return held;
  }
}
