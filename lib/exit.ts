/** How the programs end on an error: a user's mistake in a sentence (exit 2), anything else with its stack (exit 1). */
import { errorMessage } from "./logger.ts";

/** Errors a user fixes: printed without a stack, exit code 2. */
const userErrors = new Set([
  "UsageError",
  "ConfigError",
  "TlsFileError",
  "MissingBinaryError",
  "KubeconfigError",
  "NodeUnavailableError",
]);

export function usageError(message: string): never {
  throw Object.assign(new Error(message), { name: "UsageError" });
}

/** Prints `error` for a person and exits; `usage` follows a command-line parsing error. */
export function exitOnError(error: unknown, usage: string): never {
  if (error instanceof Error && userErrors.has(error.name)) {
    process.stderr.write(`pingpong: ${error.message}\n`);
    process.exit(2);
  }
  if (
    error instanceof TypeError &&
    (error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS") === true
  ) {
    process.stderr.write(`pingpong: ${error.message}\n\n${usage}`);
    process.exit(2);
  }
  process.stderr.write(
    `pingpong: ${errorMessage(error)}\n${error instanceof Error ? (error.stack ?? "") : ""}\n`,
  );
  process.exit(1);
}
