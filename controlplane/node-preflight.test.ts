/**
 * A node that cannot start says what is missing and how to run without one, at once: run the real
 * CLI without the node's binaries and images, and as a user who is not root.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CliProcess } from "../workloads/testing/processes.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "preflight-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function clusterUp(env: Record<string, string>, prefix: string[] = []) {
  const started = Date.now();
  const cli = new CliProcess(["cluster", "up", "--dir", join(dir, "cluster")], env, undefined, prefix);
  const code = await cli.exited();
  return { code, stderr: cli.stderr, seconds: (Date.now() - started) / 1000 };
}

describe("pingpong cluster up when the node cannot start", () => {
  it("names the missing binaries and images, how to get them, and the API-only mode", async () => {
    const result = await clusterUp({ PINGPONG_CACHE_DIR: join(dir, "empty-cache") });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("pingpong: the local node cannot start:");
    expect(result.stderr).toMatch(
      /Kubernetes node binaries missing in .*empty-cache.*: kubelet, kube-proxy, kube-scheduler \(`make node` builds them\)/,
    );
    expect(result.stderr).toMatch(/node images missing in .*empty-cache.*: pause\.tar, coredns\.tar/);
    expect(result.stderr).toMatch(
      /kube-router missing at .*empty-cache.*: it enforces the node's NetworkPolicies \(`make node` builds it\)/,
    );
    expect(result.stderr).toContain(
      "Without a node, run the API-only control plane: pingpong cluster up --no-node",
    );
    expect(result.stderr).not.toContain("    at "); // a message, not a stack trace
    expect(result.seconds).toBeLessThan(30);
  });

  it("says that it needs root when run as another user", async () => {
    const result = await clusterUp({ PINGPONG_CACHE_DIR: join(dir, "empty-cache") }, [
      "/usr/bin/setpriv",
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      "--",
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("not running as root: the node needs root for containerd");
    expect(result.stderr).toContain("--no-node");
  });
});
