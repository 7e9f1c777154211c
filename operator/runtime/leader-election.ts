/**
 * Leader election on a coordination.k8s.io Lease, as client-go does it: take the Lease when it is free
 * or its holder stopped renewing for leaseDuration; renew every retryPeriod; if renewing fails for
 * renewDeadline, leadership is lost and the caller must stop writing. Updates use the Lease's
 * resourceVersion, so two candidates can never both win. On a clean stop the Lease is released so a
 * standby takes over at once.
 */
import { hostname } from "node:os";
import type { Logger } from "../../lib/logger.ts";
import { errorMessage } from "../../lib/logger.ts";
import { KubeApiError, type KubeClient } from "./kube-client.ts";
import { resources } from "./resources.ts";

export interface LeaderElectionOptions {
  readonly client: KubeClient;
  readonly namespace: string;
  readonly name: string;
  readonly identity?: string;
  readonly leaseDurationMs?: number;
  readonly renewDeadlineMs?: number;
  readonly retryPeriodMs?: number;
  readonly logger: Logger;
}

interface Lease {
  apiVersion: "coordination.k8s.io/v1";
  kind: "Lease";
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: {
    holderIdentity?: string | null;
    leaseDurationSeconds?: number;
    acquireTime?: string | null;
    renewTime?: string | null;
    leaseTransitions?: number;
  };
}

/** Microsecond precision, as the Lease API's MicroTime expects. */
const microTime = (date: Date) => date.toISOString().replace("Z", "000Z");

export class LeaderElector {
  readonly identity: string;
  private readonly options: LeaderElectionOptions;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private stopped = false;
  private leading = false;
  private timer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;

  constructor(options: LeaderElectionOptions) {
    this.options = options;
    this.identity =
      options.identity ?? `${hostname()}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
    this.leaseDurationMs = options.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = options.retryPeriodMs ?? 2_000;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /**
   * Resolves once this candidate holds the Lease (or undefined if stopped first). Afterwards it keeps
   * renewing; `onLost` is called once if renewals fail for renewDeadline.
   */
  async acquire(onLost: () => void): Promise<boolean> {
    const { logger } = this.options;
    logger.info(
      { lease: `${this.options.namespace}/${this.options.name}`, identity: this.identity },
      "Waiting for leadership",
    );
    while (!this.stopped) {
      if (await this.tryAcquireOrRenew()) {
        this.leading = true;
        logger.info({ identity: this.identity }, "Became the leader");
        this.renewLoop(onLost);
        return true;
      }
      await this.sleep(this.retryPeriodMs);
    }
    return false;
  }

  private renewLoop(onLost: () => void): void {
    let lastRenew = Date.now();
    const tick = async () => {
      if (this.stopped) return;
      if (await this.tryAcquireOrRenew()) {
        lastRenew = Date.now();
      } else if (Date.now() - lastRenew > this.renewDeadlineMs) {
        this.leading = false;
        this.options.logger.error(
          { identity: this.identity },
          "Lost leadership: could not renew the Lease in time",
        );
        onLost();
        return;
      }
      this.timer = setTimeout(() => void tick(), this.retryPeriodMs);
    };
    this.timer = setTimeout(() => void tick(), this.retryPeriodMs);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(resolve, ms);
    });
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { client, namespace, name, logger } = this.options;
    const now = new Date();
    try {
      const lease = await client.get<Lease>(resources.lease, namespace, name);
      if (!lease) {
        await client.create<Lease>({
          apiVersion: "coordination.k8s.io/v1",
          kind: "Lease",
          metadata: { name, namespace },
          spec: {
            holderIdentity: this.identity,
            leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000),
            acquireTime: microTime(now),
            renewTime: microTime(now),
            leaseTransitions: 0,
          },
        });
        return true;
      }
      const holder = lease.spec.holderIdentity ?? "";
      const renewed = lease.spec.renewTime ? Date.parse(lease.spec.renewTime) : 0;
      const duration = (lease.spec.leaseDurationSeconds ?? 15) * 1000;
      const ours = holder === this.identity;
      if (!ours && holder !== "" && renewed + duration > now.getTime()) return false;
      await client.update<Lease>({
        ...lease,
        spec: {
          ...lease.spec,
          holderIdentity: this.identity,
          leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000),
          renewTime: microTime(now),
          ...(ours
            ? {}
            : { acquireTime: microTime(now), leaseTransitions: (lease.spec.leaseTransitions ?? 0) + 1 }),
        },
      });
      return true;
    } catch (error) {
      // 409: another candidate updated the Lease first; it won this round.
      if (!(error instanceof KubeApiError && error.status === 409)) {
        logger.warn({ error: errorMessage(error) }, "Leader election request failed");
      }
      return false;
    }
  }

  /** Stops renewing and, if leading, releases the Lease so a standby can take over immediately. */
  async release(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.wake?.();
    if (!this.leading) return;
    this.leading = false;
    const { client, namespace, name } = this.options;
    try {
      const lease = await client.get<Lease>(resources.lease, namespace, name);
      if (lease?.spec.holderIdentity === this.identity) {
        await client.update<Lease>({
          ...lease,
          spec: { ...lease.spec, holderIdentity: null, renewTime: null, acquireTime: null },
        });
        this.options.logger.info("Released leadership");
      }
    } catch (error) {
      this.options.logger.warn(
        { error: errorMessage(error) },
        "Could not release the Lease; it expires by itself",
      );
    }
  }
}
