/**
 * Workload benchmark: ponger requests per second over mutual TLS with keep-alive, the ponger pinned to
 * one core and the load generator (this process) to the other; then a pinger at 10 pings/s for a
 * while, its CPU and RSS read from its own process metrics.
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Pool } from "undici";
import { freePort } from "../lib/ports.ts";
import { mintTestPki } from "../operator/pki/testing/fixtures.ts";
import { fileURLToPath } from "node:url";
import { metricValue } from "../workloads/testing/tls-client.ts";
import { report } from "./report.ts";

function pin(pid: number, core: number): boolean {
  try {
    execFileSync("taskset", ["-pc", String(core), String(pid)], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** What ships: the compiled CLI (`npm run bench` builds first). */
const distCli = fileURLToPath(new URL("../dist/cli.js", import.meta.url));

async function metrics(url: string): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await (await fetch(`${url}/metrics`)).text();
    } catch (error) {
      if (attempt > 100) throw error;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Starts `pingpong <command>` with its logs going to /dev/null, as a container runtime would take them. */
async function start(command: string, config: string) {
  const devNull = await open("/dev/null", "w");
  const child = spawn(process.execPath, [distCli, command, "--config", config], {
    stdio: ["ignore", devNull.fd, "inherit"],
    env: { ...process.env, LOG_LEVEL: "info" },
  });
  return {
    child,
    stop: async () => {
      child.kill("SIGKILL");
      await devNull.close();
    },
  };
}

export async function benchWorkloads(): Promise<void> {
  console.log("\n# Workloads (real processes on 127.0.0.1, info-level JSON logs to /dev/null)");
  const pki = await mintTestPki("bench");
  const dir = await mkdtemp(join(tmpdir(), "bench-workloads-"));
  const file = (name: string) => join(dir, name);
  const [pingPort, pongerMetricsPort, pingerMetricsPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const pingUrl = `https://127.0.0.1:${pingPort}/ping`;
  await Promise.all([
    writeFile(file("ca.crt"), pki.ca.certificatePem),
    writeFile(file("server.crt"), pki.server.certificatePem),
    writeFile(file("server.key"), pki.server.privateKeyPem),
    writeFile(file("client.crt"), pki.client.certificatePem),
    writeFile(file("client.key"), pki.client.privateKeyPem),
    writeFile(
      file("ponger.yaml"),
      `service: {address: 127.0.0.1, port: ${pingPort}, protocol: https, tlsCertificate: ${file("server.crt")}, tlsPrivateKey: ${file("server.key")}, clientCA: ${file("ca.crt")}}\nmetrics: {address: 127.0.0.1, port: ${pongerMetricsPort}}\n`,
    ),
    writeFile(
      file("pinger.yaml"),
      `ponger: {url: ${pingUrl}, acceptCert: ${file("ca.crt")}, clientCertificate: ${file("client.crt")}, clientPrivateKey: ${file("client.key")}}\ninterval: 100ms\nmetrics: {address: 127.0.0.1, port: ${pingerMetricsPort}}\n`,
    ),
  ]);
  const ponger = await start("ponger", file("ponger.yaml"));
  let pinger: Awaited<ReturnType<typeof start>> | undefined;
  try {
    const pongerProbes = `http://127.0.0.1:${pongerMetricsPort}`;
    await metrics(pongerProbes); // waits until it is up
    const pinned = ponger.child.pid !== undefined && pin(ponger.child.pid, 0) && pin(process.pid, 1);
    const pool = new Pool(new URL(pingUrl).origin, {
      connections: 8,
      pipelining: 1,
      connect: { ca: pki.ca.certificatePem, cert: pki.client.certificatePem, key: pki.client.privateKeyPem },
    });
    const load = async (seconds: number) => {
      const deadline = performance.now() + seconds * 1000;
      let ok = 0;
      let failed = 0;
      await Promise.all(
        Array.from({ length: 32 }, async () => {
          while (performance.now() < deadline) {
            try {
              const response = await pool.request({ path: "/ping", method: "GET" });
              await response.body.text();
              if (response.statusCode === 200) ok++;
              else failed++;
            } catch {
              failed++;
            }
          }
        }),
      );
      return { rps: ok / seconds, failed };
    };
    await load(2); // warm-up: JIT, handshakes, connection pool
    const before = await metrics(pongerProbes);
    const measured = await load(8);
    const after = await metrics(pongerProbes);
    const cpuBefore = metricValue(before, "process_cpu_seconds_total") ?? 0;
    const cpuAfter = metricValue(after, "process_cpu_seconds_total") ?? 0;
    // The server's own count, so the number is not just what the client believes.
    const counted =
      (metricValue(after, "ping_requests_received_total") ?? 0) -
      (metricValue(before, "ping_requests_received_total") ?? 0);
    await pool.close();
    report(
      "ponger GET /ping, mTLS + keep-alive, 8 conns, 32 in flight",
      measured.rps,
      "req/s",
      `${pinned ? "ponger pinned to core 0, load on core 1" : "not pinned (no taskset)"}; ponger CPU ${(((cpuAfter - cpuBefore) / 8) * 100).toFixed(0)}%; ${measured.failed} failed; server counted ${(counted / 8).toFixed(0)}/s`,
    );
    report(
      "ponger RSS after the load",
      (metricValue(after, "process_resident_memory_bytes") ?? 0) / 2 ** 20,
      "MiB",
    );

    pinger = await start("pinger", file("pinger.yaml"));
    const pingerProbes = `http://127.0.0.1:${pingerMetricsPort}`;
    await metrics(pingerProbes);
    await new Promise((r) => setTimeout(r, 3_000)); // let it settle
    const first = await metrics(pingerProbes);
    const seconds = 20;
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const end = await metrics(pingerProbes);
    const delta = (name: string) => (metricValue(end, name) ?? 0) - (metricValue(first, name) ?? 0);
    const failures = [...end.matchAll(/^ping_failures_total\{[^}]*\} (\d+)/gm)].reduce(
      (n, m) => n + Number(m[1]),
      0,
    );
    report(
      "pinger CPU at 10 pings/s",
      (delta("process_cpu_seconds_total") / seconds) * 100,
      "% of a core",
      `${delta("ping_requests_sent_total")} pings in ${seconds} s, ${failures} failed`,
    );
    report(
      "pinger RSS at 10 pings/s",
      (metricValue(after, "process_resident_memory_bytes") ?? 0) / 2 ** 20,
      "MiB",
    );
  } finally {
    await Promise.all([ponger.stop(), pinger?.stop()]);
    await rm(dir, { recursive: true, force: true });
  }
}
