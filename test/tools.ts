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

/**
 * hack/images/build-prometheus-images.sh's folder: the Prometheus Operator, its config reloader and
 * Prometheus as image archives for a node, and the folder of their binaries and the operator's
 * bundle.yaml (hack/prometheus/build-stack.sh).
 */
export async function prometheusStack(): Promise<{ images: string[]; stack: string }> {
  const script = (path: string) => join(projectRoot(), "hack", ...path.split("/"));
  try {
    const [{ stdout: images }, { stdout: stack }] = [
      await run("bash", [script("images/build-prometheus-images.sh")], { maxBuffer: 16 * 1024 * 1024 }),
      await run("bash", [script("prometheus/build-stack.sh")], { maxBuffer: 16 * 1024 * 1024 }),
    ];
    const folder = images.trim();
    const archives = ["prometheus-operator.tar", "prometheus-config-reloader.tar", "prometheus.tar"];
    return { images: archives.map((a) => join(folder, a)), stack: stack.trim() };
  } catch (error) {
    throw new Error(
      `the Prometheus images could not be built (\`make prometheus\` builds them from the Go module proxy): ${String(error)}`,
      { cause: error },
    );
  }
}
