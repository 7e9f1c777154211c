/**
 * Test tooling that hack/ scripts build from the Go module proxy and cache under ~/.cache/pingpong
 * (`make helm`, `make prometheus`). Each script reuses what it built and prints where it is, so the
 * tests ask it rather than repeat its versions.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { projectRoot } from "../lib/repo.ts";

const run = promisify(execFile);

/** hack/helm/build.sh's helm binary, or hack/prometheus/build.sh's folder of tools. */
export async function toolPath(tool: "helm" | "prometheus"): Promise<string> {
  try {
    const { stdout } = await run("bash", [join(projectRoot(), "hack", tool, "build.sh")], {
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout.trim();
  } catch (error) {
    throw new Error(
      `hack/${tool}/build.sh failed (\`make ${tool}\` builds it from the Go module proxy): ${String(error)}`,
      { cause: error },
    );
  }
}
