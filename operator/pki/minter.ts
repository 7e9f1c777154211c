/**
 * Minting off the main thread. Key generation is native and asynchronous already, but signing is pure
 * JavaScript (tens of milliseconds per certificate), so a burst of rotations would stall the
 * operator's event loop: watches, leader-election renewals and probes. A small pool of worker threads
 * does the minting instead; the main thread only passes PEM strings.
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { PkiError, type PkiErrorCode } from "../../lib/pki/errors.ts";
import {
  type CertificateAuthorityRequest,
  createCertificateAuthority,
  type IssuedCertificate,
  issueLeafCertificate,
  type LeafRequest,
} from "../../lib/pki/mint.ts";

export interface CertificateMinter {
  createCertificateAuthority(request: CertificateAuthorityRequest, now?: Date): Promise<IssuedCertificate>;
  issueLeafCertificate(ca: IssuedCertificate, request: LeafRequest, now?: Date): Promise<IssuedCertificate>;
  close(): Promise<void>;
}

export type MintJob =
  | { id: number; kind: "ca"; request: CertificateAuthorityRequest; nowMs: number }
  | { id: number; kind: "leaf"; ca: IssuedCertificate; request: LeafRequest; nowMs: number };

export type MintReply =
  | { id: number; ok: true; issued: IssuedCertificate }
  | { id: number; ok: false; code: PkiErrorCode | undefined; message: string };

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** Mints on the calling thread. For tests and tools; the operator uses the worker pool. */
export const inProcessMinter: CertificateMinter = {
  createCertificateAuthority,
  issueLeafCertificate,
  close: () => Promise.resolve(),
};

interface Pending {
  job: MintJob;
  resolve: (issued: IssuedCertificate) => void;
  reject: (error: Error) => void;
}

interface PoolWorker {
  worker: Worker;
  current: Pending | undefined;
  idleTimer: NodeJS.Timeout | undefined;
}

// Sources run as .ts under Node's type stripping (tests, benchmarks) and as .js from dist/.
const workerUrl = new URL(`./mint-worker${import.meta.url.endsWith(".ts") ? ".ts" : ".js"}`, import.meta.url);

/**
 * Workers exit after this long without work: each holds a V8 heap of its own, and an operator at rest
 * (certificates renew at most every few hours) should not pay for them.
 */
const defaultIdleTimeoutMs = 10_000;

export class WorkerPoolMinter implements CertificateMinter {
  readonly size: number;
  private readonly idleTimeoutMs: number;
  private readonly workers: PoolWorker[] = [];
  private readonly queue: Pending[] = [];
  private nextId = 1;
  private closed = false;

  constructor(size: number = availableParallelism(), idleTimeoutMs = defaultIdleTimeoutMs) {
    this.size = Math.max(1, size);
    this.idleTimeoutMs = idleTimeoutMs;
  }

  /** Worker threads alive now (they start on demand and exit when idle). */
  get liveWorkers(): number {
    return this.workers.length;
  }

  createCertificateAuthority(
    request: CertificateAuthorityRequest,
    now: Date = new Date(),
  ): Promise<IssuedCertificate> {
    return this.submit({ kind: "ca", request, nowMs: now.getTime() });
  }

  issueLeafCertificate(
    ca: IssuedCertificate,
    request: LeafRequest,
    now: Date = new Date(),
  ): Promise<IssuedCertificate> {
    return this.submit({ kind: "leaf", ca, request, nowMs: now.getTime() });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const pending of this.queue.splice(0))
      pending.reject(new Error("the certificate minter was closed"));
    await Promise.all(
      this.workers.splice(0).map((w) => {
        clearTimeout(w.idleTimer);
        return w.worker.terminate();
      }),
    );
  }

  private submit(job: DistributiveOmit<MintJob, "id">): Promise<IssuedCertificate> {
    if (this.closed) return Promise.reject(new Error("the certificate minter is closed"));
    return new Promise((resolve, reject) => {
      this.queue.push({ job: { ...job, id: this.nextId++ }, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      const idle = this.workers.find((w) => !w.current) ?? this.spawn();
      if (!idle) return;
      const pending = this.queue.shift();
      if (!pending) return;
      idle.current = pending;
      clearTimeout(idle.idleTimer);
      // A busy worker keeps the process alive until its job is answered; an idle one does not.
      idle.worker.ref();
      idle.worker.postMessage(pending.job);
    }
  }

  private static isIdle(entry: PoolWorker): boolean {
    return entry.current === undefined;
  }

  private retire(entry: PoolWorker): void {
    if (entry.current) return;
    const index = this.workers.indexOf(entry);
    if (index >= 0) this.workers.splice(index, 1);
    void entry.worker.terminate();
  }

  private spawn(): PoolWorker | undefined {
    if (this.workers.length >= this.size) return undefined;
    const entry: PoolWorker = { worker: new Worker(workerUrl), current: undefined, idleTimer: undefined };
    entry.worker.unref();
    entry.worker.on("message", (reply: MintReply) => {
      const pending = entry.current;
      entry.current = undefined;
      entry.worker.unref();
      if (pending?.job.id === reply.id) {
        if (reply.ok) pending.resolve(reply.issued);
        else pending.reject(reply.code ? new PkiError(reply.code, reply.message) : new Error(reply.message));
      }
      this.dispatch();
      // dispatch() may have handed this worker the next job; only an idle one starts its timer.
      if (WorkerPoolMinter.isIdle(entry)) {
        entry.idleTimer = setTimeout(() => {
          this.retire(entry);
        }, this.idleTimeoutMs);
        entry.idleTimer.unref();
      }
    });
    entry.worker.on("error", (error: Error) => {
      // A crashed worker fails its job; a fresh worker takes the next one.
      entry.current?.reject(error);
      entry.current = undefined;
      this.workers.splice(this.workers.indexOf(entry), 1);
      this.dispatch();
    });
    this.workers.push(entry);
    return entry;
  }
}
