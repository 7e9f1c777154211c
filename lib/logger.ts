import { pino, type DestinationStream } from "pino";
import { censor, type Logger, redactedPaths } from "./line-logger.ts";

export { errorMessage, type Logger } from "./line-logger.ts";

/**
 * The operator's logger: pino JSON lines with ISO times and textual levels, key material redacted by
 * path (lib/line-logger.ts lists the paths). The ponger and the pinger write the same lines with
 * lib/line-logger.ts instead.
 */
export function createLogger(name: string, destination?: DestinationStream): Logger {
  const options = {
    name,
    level: process.env.LOG_LEVEL ?? "info",
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
    redact: { paths: [...redactedPaths], censor },
  };
  return destination ? pino(options, destination) : pino(options);
}
