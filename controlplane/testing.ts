/**
 * The control plane for test files: one per file, started in beforeAll. When the binaries are
 * missing or it cannot start, the suite fails with the reason and the component's log; it is never
 * skipped.
 */
import { errorMessage } from "../lib/logger.ts";
import { ControlPlane, type ControlPlaneOptions } from "./control-plane.ts";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { processAlive } from "./host.ts";

export async function startTestControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  try {
    return await ControlPlane.start(options);
  } catch (error) {
    throw new Error(`the test control plane could not start: ${errorMessage(error)}`, { cause: error });
  }
}

/**
 * The machine's one node, for one test file at a time: test files run side by side, and a node of
 * another file would both be refused and show up in this file's "nothing left behind" checks. The
 * lock is a folder holding its owner's pid, taken from beforeAll to afterAll; a lock whose owner has
 * died is taken over.
 */
export class NodeTestLock {
  private static readonly path = join(tmpdir(), "pingpong-node-tests.lock");

  static async acquire(waitMs = 20 * 60_000): Promise<NodeTestLock> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      try {
        await mkdir(NodeTestLock.path);
        await writeFile(join(NodeTestLock.path, "pid"), String(process.pid));
        return new NodeTestLock();
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      }
      const owner = Number(await readFile(join(NodeTestLock.path, "pid"), "utf8").catch(() => "0"));
      if (owner > 0 && !processAlive(owner)) await rm(NodeTestLock.path, { recursive: true, force: true });
      if (Date.now() > deadline)
        throw new Error(`another test file (pid ${owner}) held the node for over ${waitMs / 60_000} minutes`);
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }

  async release(): Promise<void> {
    await rm(NodeTestLock.path, { recursive: true, force: true });
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

/**
 * Applies the CRDs in `path` and waits until each is Established. (`kubectl wait
 * --for=condition=Established` fails outright on a CRD the API server has not given conditions yet.)
 */
export async function applyCrds(
  kubectl: (...args: string[]) => Promise<string>,
  path: string,
  timeoutMs = 60_000,
): Promise<void> {
  const applied = await kubectl("apply", "--server-side", "-f", path, "-o", "name");
  const names = applied.split("\n").filter((line) => line !== "");
  await eventually(
    `${names.join(", ")} Established`,
    async () => {
      const { items } = JSON.parse(await kubectl("get", ...names, "-o", "json")) as {
        items: { status?: { conditions?: { type: string; status: string }[] } }[];
      };
      const established = items.filter((crd) =>
        crd.status?.conditions?.some((c) => c.type === "Established" && c.status === "True"),
      );
      return established.length === names.length ? true : undefined;
    },
    timeoutMs,
  );
}
