/**
 * The control plane for test files: one per file, started in beforeAll. When the binaries are
 * missing or it cannot start, the suite fails with the reason and the component's log; it is never
 * skipped.
 */
import { errorMessage } from "../lib/logger.ts";
import { ControlPlane, type ControlPlaneOptions } from "./control-plane.ts";

export async function startTestControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  try {
    return await ControlPlane.start(options);
  } catch (error) {
    throw new Error(`the test control plane could not start: ${errorMessage(error)}`, { cause: error });
  }
}

/** A namespace name unique to this test run. */
export function testNamespace(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6).toString(36)}`.slice(0, 63);
}

/** Polls until `check` returns a value other than undefined; fails with `what` after the timeout. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs / 1000}s waiting for ${what}${lastError === undefined ? "" : `; last error: ${errorMessage(lastError)}`}`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
