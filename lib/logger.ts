import { pino, type DestinationStream, type Logger } from "pino";

export type { Logger };

/**
 * pino JSON logs with ISO times and textual levels. Fields that could hold key material are
 * redacted wherever they appear, as a second line of defence: no code here logs a key on purpose.
 */
export function createLogger(name: string, destination?: DestinationStream): Logger {
  const options = {
    name,
    level: process.env.LOG_LEVEL ?? "info",
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
    redact: {
      // By path, where key material would sit (PEM fields, TLS options), never by the bare word
      // `key`: that is also the work-queue key, the name of the pair a log line is about.
      paths: [
        "privateKey",
        "privateKeyPem",
        "*.privateKey",
        "*.privateKeyPem",
        "*.tlsKey",
        "connect.key",
        "tls.key",
        "*.connect.key",
        "*.tls.key",
      ],
      censor: "[redacted]",
    },
  };
  return destination ? pino(options, destination) : pino(options);
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
