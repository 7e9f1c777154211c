import type { Logger } from "./logger.ts";

/**
 * On SIGTERM or SIGINT: run `stop` (stop accepting, finish what is in flight) and exit 0. A second
 * signal, or `stop` taking longer than the grace period, exits 1 at once.
 */
export function exitOnSignal(logger: Logger, stop: () => Promise<void>, graceMs = 25_000): void {
  let stopping = false;
  const handle = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, "Second signal, exiting now");
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, "Shutting down");
    setTimeout(() => {
      logger.error({ graceMs }, "Shutdown took longer than the grace period, exiting");
      process.exit(1);
    }, graceMs).unref();
    stop().then(
      () => {
        logger.info("Stopped");
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, "Shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", handle);
  process.on("SIGINT", handle);
}
