/**
 * The ponger's side of a fire drill (spec.drill): the operator writes drill.json into the ponger's
 * ConfigMap; the kubelet swaps it into the volume; this reads it while the ponger runs (watching the
 * folder, polling as a fallback) and answers, for each ping, which fault to inject. The ponger judges
 * `until` on its own clock, so a drill ends on time even when the operator is down, and one whose
 * `until` has passed injects nothing. A file that does not parse injects nothing and says why.
 */
import { type FSWatcher, readFileSync, watch } from "node:fs";
import path from "node:path";
import { errorMessage, type Logger } from "../../lib/logger.ts";

export interface Drill {
  readonly abortRatio: number;
  readonly abortStatus: number;
  readonly delayRatio: number;
  readonly delayMs: number;
  readonly refuseClientCertificates: boolean;
  readonly until: Date;
}

/** What to do to one ping. */
export interface Fault {
  readonly abortStatus?: number;
  readonly delayMs?: number;
}

const maxDelayMs = 60_000;

function ratio(value: unknown, field: string): number {
  if (value === undefined) return 0;
  if (typeof value !== "number" || !(value >= 0 && value <= 1))
    throw new Error(`${field} must be a number from 0 to 1`);
  return value;
}

/** A drill from drill.json's text; undefined for `{}` (no drill). Throws, saying what is wrong, on anything else. */
export function parseDrill(text: string): Drill | undefined {
  const value: unknown = JSON.parse(text);
  if (value === null || typeof value !== "object" || Array.isArray(value))
    throw new Error("not a JSON object");
  const record = value as Record<string, unknown>;
  if (Object.keys(record).length === 0) return undefined;
  const until = typeof record.until === "string" ? new Date(record.until) : new Date(Number.NaN);
  if (Number.isNaN(until.getTime())) throw new Error("until must be an RFC 3339 time");
  const abortStatus = record.abortStatus ?? 503;
  if (
    typeof abortStatus !== "number" ||
    !Number.isInteger(abortStatus) ||
    abortStatus < 400 ||
    abortStatus > 599
  ) {
    throw new Error("abortStatus must be an HTTP status from 400 to 599");
  }
  const delayMs = record.delayMs ?? 0;
  if (typeof delayMs !== "number" || !(delayMs >= 0 && delayMs <= maxDelayMs)) {
    throw new Error(`delayMs must be from 0 to ${maxDelayMs}`);
  }
  return {
    abortRatio: ratio(record.abortRatio, "abortRatio"),
    abortStatus,
    delayRatio: ratio(record.delayRatio, "delayRatio"),
    delayMs,
    refuseClientCertificates: record.refuseClientCertificates === true,
    until,
  };
}

/** The fault for one ping under `drill` at `now`: abort and delay each drawn with their own ratio. */
export function faultFor(drill: Drill | undefined, now: number, random: () => number): Fault {
  if (!drill || now >= drill.until.getTime()) return {};
  const delay = drill.delayRatio > 0 && random() < drill.delayRatio ? { delayMs: drill.delayMs } : {};
  const abort = drill.abortRatio > 0 && random() < drill.abortRatio ? { abortStatus: drill.abortStatus } : {};
  return { ...delay, ...abort };
}

export interface DrillReaderOptions {
  readonly file: string;
  readonly logger: Logger;
  readonly pollIntervalMs?: number;
  readonly now?: () => number;
  readonly random?: () => number;
}

export class DrillReader {
  private readonly options: DrillReaderOptions;
  private drill: Drill | undefined;
  private text: string | undefined;
  private lastError: string | undefined;
  /** When the drill in use was loaded: the fault starts then (or never, once until has passed). */
  private loadedAt: number | undefined;
  private watcher: FSWatcher | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private readonly injected = { abort: 0, delay: 0, refuse: 0 };

  constructor(options: DrillReaderOptions) {
    this.options = options;
  }

  start(): void {
    this.check();
    const folder = path.dirname(this.options.file);
    try {
      this.watcher = watch(folder, { persistent: false }, () => {
        this.check();
      });
      this.watcher.on("error", () => undefined);
    } catch (error) {
      this.options.logger.warn(
        { folder, error: errorMessage(error) },
        "Cannot watch the drill folder; polling",
      );
    }
    this.pollTimer = setInterval(() => {
      this.check();
    }, this.options.pollIntervalMs ?? 1_000);
    this.pollTimer.unref();
  }

  stop(): void {
    this.watcher?.close();
    clearInterval(this.pollTimer);
  }

  /** Reads the file again if it changed (it is tiny). A missing file is no drill. */
  check(): void {
    let text: string;
    try {
      text = readFileSync(this.options.file, "utf8");
    } catch {
      text = "{}";
    }
    if (text === this.text) return;
    this.text = text;
    const { logger } = this.options;
    try {
      this.drill = parseDrill(text);
      this.loadedAt = this.now();
      this.lastError = undefined;
      if (this.drill)
        logger.warn({ drill: this.describe() }, "Fire drill loaded: injecting faults into pings");
      else logger.info("No fire drill");
    } catch (error) {
      this.drill = undefined;
      this.lastError = `${this.options.file}: ${errorMessage(error)}`;
      logger.error({ error: this.lastError }, "Cannot read the fire drill; injecting nothing");
    }
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  /** Whether a drill is injecting faults now. */
  get active(): boolean {
    return this.drill !== undefined && this.now() < this.drill.until.getTime();
  }

  /** The fault for the next ping, counted. */
  nextFault(): Fault {
    const fault = faultFor(this.drill, this.now(), this.options.random ?? Math.random);
    if (fault.abortStatus !== undefined) this.injected.abort++;
    if (fault.delayMs !== undefined) this.injected.delay++;
    return fault;
  }

  /** Whether to refuse a client certificate in the handshake now (counted when it does). */
  refuseHandshake(): boolean {
    const refuse = this.active && this.drill?.refuseClientCertificates === true;
    if (refuse) this.injected.refuse++;
    return refuse;
  }

  private describe() {
    const drill = this.drill;
    return drill && { ...drill, until: drill.until.toISOString() };
  }

  /** For /status: the drill loaded, whether it injects now, and how many faults it injected. */
  get status() {
    const since = this.active && this.loadedAt !== undefined ? new Date(this.loadedAt).toISOString() : null;
    return {
      loaded: this.describe() ?? null,
      active: this.active,
      since,
      injected: { ...this.injected },
      error: this.lastError ?? null,
    };
  }
}
