/**
 * The logging interface every program here writes to, and the small JSON-lines logger the ponger and
 * the pinger use. The operator logs with pino (lib/logger.ts); a pino logger is a Logger too.
 *
 * The line logger writes exactly the lines pino is configured to write (a test compares the two):
 * `{"level":"info","time":"<ISO>","pid":..,"hostname":..,"name":..,<bindings>,<fields>,"msg":..}`,
 * with errors serialized as pino's `err` serializer does and the same key-material paths redacted.
 * Why the workloads do not use pino: loading it (with its transport threads support) cost a pod about
 * 3.5 MiB of its 55 MiB budget, and a line per ping costs pino ~4 µs against ~0.3 µs here
 * (`npm run bench -- workloads`).
 *
 * Lines are gathered and written together once per event-loop turn, so a ponger answering tens of
 * thousands of pings a second makes a few thousand writes, not one per line; nothing is held back
 * past the current turn, and what is pending is written when the process exits.
 */
import { isoTime } from "./time.ts";

const { writeSync } = process.getBuiltinModule("node:fs");
const { hostname } = process.getBuiltinModule("node:os");

export interface LogFn {
  (fields: object, message?: string): void;
  (message: string): void;
}

export interface Logger {
  level: string;
  trace: LogFn;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  fatal: LogFn;
  child(bindings: Record<string, unknown>): Logger;
  isLevelEnabled(level: string): boolean;
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Where key material would sit (PEM fields, TLS options): redacted by path in every log line, as a
 * second line of defence; no code here logs a key on purpose. Never the bare word `key`: that is also
 * the work-queue key, the name of the pair a log line is about.
 */
export const redactedPaths = [
  "privateKey",
  "privateKeyPem",
  "*.privateKey",
  "*.privateKeyPem",
  "*.tlsKey",
  "connect.key",
  "tls.key",
  "*.connect.key",
  "*.tls.key",
] as const;

export const censor = "[redacted]";

const levels: Readonly<Record<string, number>> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
  silent: Infinity,
};

function levelValue(level: string): number {
  const value = levels[level];
  if (value === undefined)
    throw new Error(`unknown log level "${level}"; use one of ${Object.keys(levels).join(", ")}`);
  return value;
}

/** Where lines go: anything with write(line), e.g. a Writable in tests. */
export interface LineDestination {
  write(line: string): unknown;
}

/** Standard output, written once per event-loop turn with whatever lines the turn produced. */
class StdoutBatches implements LineDestination {
  private pending = "";
  private scheduled = false;
  /** Lines are dropped, and counted, rather than buffered past this while stdout does not drain. */
  private readonly maxPending = 4 * 2 ** 20;
  private dropped = 0;

  constructor() {
    process.on("exit", () => this.flush());
  }

  write(line: string): void {
    if (this.pending.length > this.maxPending) {
      this.dropped++;
      return;
    }
    this.pending += line;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.scheduled = false;
    if (this.dropped > 0) {
      this.pending += `${JSON.stringify({ level: "warn", time: isoTime(Date.now()), msg: `${this.dropped} log lines dropped: standard output did not keep up` })}\n`;
      this.dropped = 0;
    }
    const bytes = Buffer.from(this.pending);
    let written = 0;
    try {
      while (written < bytes.length) written += writeSync(1, bytes, written);
      this.pending = "";
    } catch (error) {
      if ((error as { code?: string }).code !== "EAGAIN") {
        // EPIPE and the like: nobody reads standard output any more; there is nowhere to write.
        this.pending = "";
        return;
      }
      // A non-blocking pipe that is full: keep the rest and try again shortly.
      this.pending = bytes.subarray(written).toString();
      this.scheduled = true;
      setTimeout(() => this.flush(), 10).unref();
    }
  }
}

let stdout: StdoutBatches | undefined;

let isoMillisecond = 0;
let isoText = "";

/** The time as pino's isoTime writes it, computed once per millisecond. */
function isoNow(): string {
  const now = Date.now();
  if (now !== isoMillisecond) {
    isoMillisecond = now;
    isoText = isoTime(now);
  }
  return isoText;
}

/** pino's `err` serializer: type, message, stack, and the error's own fields (e.g. code). */
function serializeError(error: Error): Record<string, unknown> {
  const fields: Record<string, unknown> = {
    type: error.constructor.name,
    message: error.message,
    stack: error.stack,
  };
  for (const [name, value] of Object.entries(error)) if (!(name in fields)) fields[name] = value;
  return fields;
}

function redact(fields: Record<string, unknown>): Record<string, unknown> {
  let copy: Record<string, unknown> | undefined;
  const set = (path: readonly string[]) => {
    const [first, second, third] = path;
    if (first === undefined) return;
    copy ??= { ...fields };
    if (second === undefined) {
      if (first in copy) copy[first] = censor;
      return;
    }
    const inner = copy[first];
    if (typeof inner !== "object" || inner === null || !(second in inner)) return;
    const innerCopy = { ...(inner as Record<string, unknown>) };
    if (third === undefined) innerCopy[second] = censor;
    else {
      const innermost = innerCopy[second];
      if (typeof innermost !== "object" || innermost === null || !(third in innermost)) return;
      innerCopy[second] = { ...(innermost as Record<string, unknown>), [third]: censor };
    }
    copy[first] = innerCopy;
  };
  for (const path of redactedPaths) {
    const parts = path.split(".");
    if (parts[0] === "*") {
      for (const name of Object.keys(fields)) {
        const value = fields[name];
        if (typeof value === "object" && value !== null) set([name, ...parts.slice(1)]);
      }
    } else set(parts);
  }
  return copy ?? fields;
}

function serializeFields(fields: object): string {
  let text = "";
  for (const [name, value] of Object.entries(redact(fields as Record<string, unknown>))) {
    if (value === undefined || typeof value === "function") continue;
    let json: string;
    try {
      json = JSON.stringify(value instanceof Error ? serializeError(value) : value);
    } catch {
      json = '"[unserializable]"';
    }
    text += `,${JSON.stringify(name)}:${json}`;
  }
  return text;
}

class LineLogger implements Logger {
  private threshold: number;
  private readonly destination: LineDestination;
  /** The serialized `,"pid":..,"name":..` and child bindings, written after the time. */
  private readonly bindings: string;

  constructor(level: string, destination: LineDestination, bindings: string) {
    this.threshold = levelValue(level);
    this.destination = destination;
    this.bindings = bindings;
  }

  get level(): string {
    return Object.keys(levels).find((name) => levels[name] === this.threshold) ?? "info";
  }

  set level(level: string) {
    this.threshold = levelValue(level);
  }

  isLevelEnabled(level: string): boolean {
    return levelValue(level) >= this.threshold;
  }

  child(bindings: Record<string, unknown>): Logger {
    return new LineLogger(this.level, this.destination, this.bindings + serializeFields(bindings));
  }

  readonly trace: LogFn = (a: object | string, b?: string) => this.write("trace", a, b);
  readonly debug: LogFn = (a: object | string, b?: string) => this.write("debug", a, b);
  readonly info: LogFn = (a: object | string, b?: string) => this.write("info", a, b);
  readonly warn: LogFn = (a: object | string, b?: string) => this.write("warn", a, b);
  readonly error: LogFn = (a: object | string, b?: string) => this.write("error", a, b);
  readonly fatal: LogFn = (a: object | string, b?: string) => this.write("fatal", a, b);

  private write(level: string, fieldsOrMessage: object | string, message?: string): void {
    if ((levels[level] ?? 0) < this.threshold) return;
    const fields = typeof fieldsOrMessage === "string" ? "" : serializeFields(fieldsOrMessage);
    const msg = typeof fieldsOrMessage === "string" ? fieldsOrMessage : message;
    this.destination.write(
      `{"level":"${level}","time":"${isoNow()}"${this.bindings}${fields}${msg === undefined ? "" : `,"msg":${JSON.stringify(msg)}`}}\n`,
    );
  }
}

/**
 * A logger named `name` at LOG_LEVEL (default info), writing JSON lines to `destination` or, by
 * default, to standard output in batches.
 */
export function createLineLogger(name: string, destination?: LineDestination): Logger {
  const base = serializeFields({ pid: process.pid, hostname: hostname(), name });
  return new LineLogger(
    process.env.LOG_LEVEL ?? "info",
    destination ?? (stdout ??= new StdoutBatches()),
    base,
  );
}
