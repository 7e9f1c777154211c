/**
 * `pingpong status` and `pingpong rotate` against a real API server with the operator running
 * (API-only: no pods run, so rotations advance as the operator does without pods to ask).
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PingPongPair } from "../api/types.ts";
import { findBinaries } from "../../controlplane/binaries.ts";
import { eventually } from "../../controlplane/testing.ts";
import { projectRoot } from "../../lib/repo.ts";
import { OperatorEnvironment } from "../testing/environment.ts";
import { runRotate, runStatus } from "./run.ts";
import { commandOutput } from "./testing.ts";
import { countdown, type PairReport } from "./status.ts";

const execFileAsync = promisify(execFile);
let env: OperatorEnvironment;
let namespace: string;
let kubeconfig: string;

beforeAll(async () => {
  env = await OperatorEnvironment.start();
  await env.startOperator();
  namespace = await env.namespace("commands");
  kubeconfig = env.plane.kubeconfigPath;
  await env.createPair(namespace, "shown");
  await env.condition(namespace, "shown", "CertificatesReady", "True");
}, 180_000);
afterAll(async () => {
  await OperatorEnvironment.stopIfStarted(env);
});

const run = (command: typeof runStatus, args: string[]) =>
  commandOutput(command, [...args, "--kubeconfig", kubeconfig, "-n", namespace]);

describe("pingpong status", () => {
  it("shows conditions, certificates with countdowns, pods, ping and events", async () => {
    // Events are recorded after the status is written: wait for the CA's.
    const text = await eventually("the IssuedCA event in the output", async () => {
      const output = await run(runStatus, ["shown"]);
      return output.includes("IssuedCA") ? output : undefined;
    });
    expect(text).toContain(`PingPongPair ${namespace}/shown  generation 1, seen by the operator`);
    expect(text).toMatch(
      /^ {2}CertificatesReady\s+True\s+Issued\s+\(\d+s ago\)\s+CA and leaf certificates are valid/m,
    );
    expect(text).toMatch(/^ {2}Ready\s+False\s+WorkloadsUnavailable/m);
    // By default the CA lasts a year, the leaves a day, renewed a third before they expire.
    expect(text).toMatch(/^ {2}ca\s+[0-9a-f]{16}\s+\S+Z\s+\(in 36[45]d \d+h\)/m);
    expect(text).toMatch(
      /^ {2}ponger\s+[0-9a-f]{16}\s+\S+Z\s+\(in (23h \d+m|1d 0h)\)\s+\S+Z \(in 1[56]h \d+m\)/m,
    );
    // API-only: the Deployments' pods exist but never run.
    expect(text).toMatch(/^ {2}shown-ponger-\S+\s+ponger\s+Pending\s+not ready\s+0 restarts$/m);
    expect(text).toMatch(/^ {2}[\dsmhd ]+ago\s+Normal\s+IssuedCA\s+issued the CA \(serial [0-9a-f]+\)/m);
    expect(text).toContain("Ping\n  not measured yet");
    expect(text).toMatch(/^Events\n/m);
  });

  it("gives the same as JSON for scripts", async () => {
    const report = JSON.parse(await run(runStatus, ["shown", "-o", "json"])) as PairReport;
    expect(report).toMatchObject({ namespace, name: "shown", generation: 1, observedGeneration: 1 });
    expect(report.conditions.map((c) => c.type)).toEqual([
      "CertificatesReady",
      "WorkloadsAvailable",
      "PingHealthy",
      "Ready",
    ]);
    expect(report.certificates.map((c) => c.name)).toEqual(["ca", "ponger", "pinger"]);
    expect(report.certificates.every((c) => c.serial !== null && c.notAfter !== null)).toBe(true);
  });

  it("says how to find a pair that is not there", async () => {
    await expect(run(runStatus, ["missing"])).rejects.toThrow(
      `no PingPongPair "missing" in namespace "${namespace}"; list them with: kubectl get pingpongpairs -A`,
    );
  });
});

describe("pingpong rotate", () => {
  const serial = async (name: string, which: "ca" | "ponger") => {
    const pair = await env.pair(namespace, name);
    return which === "ca" ? pair?.status?.ca?.serial : pair?.status?.certificates?.ponger?.serial;
  };

  it("--no-wait only writes the request", async () => {
    await env.createPair(namespace, "requested");
    await env.condition(namespace, "requested", "CertificatesReady", "True");
    const text = await run(runRotate, ["requested", "--no-wait"]);
    const pair = (await env.pair(namespace, "requested")) as PingPongPair;
    expect(Date.parse(pair.spec?.tls?.rotate ?? "")).toBeGreaterThan(Date.now() - 60_000);
    expect(text).toMatch(/Set spec\.tls\.rotate to \S+Z \(generation 2\)\n$/);
  });

  it("renews the leaves and waits until the operator reports them issued", async () => {
    await env.createPair(namespace, "leaves");
    await env.condition(namespace, "leaves", "CertificatesReady", "True");
    const before = await serial("leaves", "ponger");
    const text = await run(runRotate, ["leaves"]);
    expect(text).toContain("CertificatesReady True Issued");
    expect(text).toMatch(/Done: every running pod of \S+\/leaves has the new certificates\.\n$/);
    expect(await serial("leaves", "ponger")).not.toBe(before);
  });

  it("--ca rotates the CA through its steps, printing each", async () => {
    await env.createPair(namespace, "authority");
    await env.condition(namespace, "authority", "CertificatesReady", "True");
    const before = await serial("authority", "ca");
    const text = await run(runRotate, ["authority", "--ca", "--timeout", "2m"]);
    expect(text).toMatch(/RotatingCA: CA rotation step [12] of 3/);
    expect(text).toContain("Done:");
    expect(await serial("authority", "ca")).not.toBe(before);
  });
});

describe("kubectl pingpong", () => {
  it("runs as a kubectl plugin from the package's kubectl-pingpong entry", async () => {
    const pkg = JSON.parse(await readFile(join(projectRoot(), "package.json"), "utf8")) as {
      bin: Record<string, string>;
    };
    const entry = join(projectRoot(), pkg.bin["kubectl-pingpong"] ?? "missing");
    const plugins = await mkdtemp(join(tmpdir(), "kubectl-plugins-"));
    try {
      // What `npm install -g` puts on PATH for a bin entry: an executable that runs it with Node.
      await writeFile(
        join(plugins, "kubectl-pingpong"),
        `#!/bin/sh\nexec "${process.execPath}" "${entry}" "$@"\n`,
        { mode: 0o755 },
      );
      const { stdout } = await execFileAsync(
        findBinaries().kubectl,
        ["pingpong", "status", "shown", "-n", namespace, "-o", "json"],
        {
          env: { ...process.env, KUBECONFIG: kubeconfig, PATH: `${plugins}:${process.env.PATH ?? ""}` },
        },
      );
      expect(JSON.parse(stdout)).toMatchObject({ name: "shown", namespace });
    } finally {
      await rm(plugins, { recursive: true, force: true });
    }
  });
});

describe("countdown", () => {
  const now = new Date("2026-11-21T12:00:00Z");
  it.each([
    ["2026-12-21T13:30:00Z", "in 30d 1h"],
    ["2026-11-21T12:05:03Z", "in 5m 3s"],
    ["2026-11-21T11:59:58Z", "2s ago"],
    ["2026-11-21T12:00:00Z", "in 0s"],
    [null, "-"],
  ])("%s -> %s", (iso, expected) => {
    expect(countdown(iso, now)).toBe(expected);
  });
});
