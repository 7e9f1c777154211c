/**
 * Every program here logs with pino: JSON lines with ISO times and textual levels, key material
 * redacted by path. The operator, the ponger and the pinger write the same shape of line.
 */
import { type DestinationStream, type Logger as PinoLogger, pino } from "pino";

export type Logger = PinoLogger;

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Where key material would sit (PEM fields, TLS options): redacted by path in every log line, as a
 * second line of defence; no code here logs a key on purpose. Never the bare word `key`: that is also
 * the work-queue key, the name of the pair a log line is about. The paths are spelled out: pino's
 * wildcard paths (`*.privateKey`) cost the ponger 12% of its throughput, for its one line per ping
 * (`npm run bench -- workloads`).
 */
export const redactedPaths = [
  "privateKey",
  "privateKeyPem",
  "tlsKey",
  "material.privateKey",
  "material.privateKeyPem",
  "material.tlsKey",
  "options.key",
  "connect.key",
  "https.key",
  "tls.key",
  "tls.privateKeyPem",
] as const;

export const censor = "[redacted]";

/**
 * A logger named `name` at LOG_LEVEL (default info). By default it writes to standard output
 * asynchronously (pino's sonic-boom destination): a ponger logs a line per ping, and under load the
 * lines of one turn of the event loop go out in one write instead of blocking on each. pino flushes
 * what is pending when the process exits. Tests pass a destination of their own.
 */
export function createLogger(name: string, destination?: DestinationStream): Logger {
  return pino(
    {
      name,
      level: process.env.LOG_LEVEL ?? "info",
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label: string) => ({ level: label }) },
      redact: { paths: [...redactedPaths], censor },
    },
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
