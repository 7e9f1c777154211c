/**
 * Workload benchmark (issue #13's targets). Everything runs as real processes on 127.0.0.1, the
 * programs in the settings their pods use (dist/pingpong.cjs, as the image's entry point runs them,
 * NODE_OPTIONS, LOG_LEVEL info) with their logs going to /dev/null as a container runtime would take
 * them:
 *
 * - idle RSS of the ponger and of the pinger, next to a bare Node HTTP server (Node's own floor) and
 *   the seed-style Go ponger in bench/go/refponger;
 * - ponger throughput over mutual TLS with keep-alive: the TypeScript ponger and the Go ponger each
 *   pinned to core 0, driven in turn by the same Go load generator (bench/go/loadgen, pinned to core 1,
 *   32 connections), alternated A/B over several rounds; each round and the median ratio are printed,
 *   with each server's CPU and peak RSS under load read from /proc;
 * - the pinger's CPU and RSS at 10 pings/s.
 *
 * BENCH_ROUNDS (default 5) and BENCH_SECONDS (counted seconds per run, default 8) tune the A/B part.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { cacheRoot } from "../controlplane/binaries.ts";
import { killWithParent } from "../lib/child-processes.ts";
import { freePort } from "../lib/ports.ts";
import { workloadNodeOptions } from "../operator/pingpongpair/children.ts";
import { mintTestPki } from "../lib/pki/testing/fixtures.ts";
import { report } from "./report.ts";

const run = promisify(execFile);
/** What the image's entry point runs for `ponger` and `pinger` (entrypoint.ts, bundled by `npm run build`). */
const distEntry = fileURLToPath(new URL("../dist/pingpong.cjs", import.meta.url));
/**
 * Node pages in about 2 MiB more of its binary for a script path of 47 characters or more (measured
 * here: 46 and 47 differ by that much, whatever the script). In the image it is /app/dist/pingpong.cjs;
 * a checkout deeper than that would overstate idle RSS, so the benchmark says so.
 */
const longScriptPath = 47;
const goSources = fileURLToPath(new URL("./go/", import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mib = (bytes: number) => bytes / 2 ** 20;

/** Builds bench/go once per content of its sources, cached beside the other built tools. */
async function goTools(): Promise<{ refponger: string; loadgen: string }> {
  const hash = createHash("sha256");
  for (const dir of ["", "refponger", "loadgen"]) {
    for (const name of (await readdir(join(goSources, dir))).sort()) {
      if (name.endsWith(".go") || name === "go.mod")
        hash.update(name).update(await readFile(join(goSources, dir, name)));
    }
  }
  const out = join(cacheRoot(), "bench", hash.digest("hex").slice(0, 16));
  if (!existsSync(join(out, "loadgen")) || !existsSync(join(out, "refponger"))) {
    await mkdir(out, { recursive: true });
    try {
      await run("go", ["build", "-o", `${out}/`, "./..."], { cwd: goSources });
    } catch (error) {
      throw new Error(
        `building bench/go with Go failed (the workload benchmark needs the go command): ${(error as Error).message}`,
        { cause: error },
      );
    }
  }
  return { refponger: join(out, "refponger"), loadgen: join(out, "loadgen") };
}

/** Resident memory of a process, from the kernel, the same way for Node and Go. */
async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kib = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
  return Number(kib ?? Number.NaN) * 1024;
}

const clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;

/** User + system CPU seconds a process has used. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / clockTicks;
}

interface Process {
  readonly name: string;
  readonly pid: number;
  stop(): Promise<void>;
}

/** Starts `command` pinned to `core` (when taskset exists), stdout to /dev/null. */
async function startPinned(
  name: string,
  core: number | undefined,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<Process> {
  const devNull = await open("/dev/null", "w");
  const pinned = core !== undefined && hasTaskset;
  const child: ChildProcess = spawn(
    pinned ? "taskset" : command,
    pinned ? ["-c", String(core), command, ...args] : args,
    { stdio: ["ignore", devNull.fd, "inherit"], env },
  );
  killWithParent(child);
  if (child.pid === undefined) throw new Error(`${name} did not start`);
  return {
    name,
    pid: child.pid,
    stop: async () => {
      const exited = new Promise((r) => child.once("exit", r));
      if (child.exitCode === null) child.kill("SIGKILL");
      await exited;
      await devNull.close();
    },
  };
}

const hasTaskset = (() => {
  try {
    execFileSync("taskset", ["-p", String(process.pid)], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

/** The settings the operator gives the pairs' pods. */
/** The environment of a ponger's or pinger's pod (children.ts). */
const podEnv = (component: keyof typeof workloadNodeOptions) => ({
  ...process.env,
  NODE_OPTIONS: workloadNodeOptions[component],
  LOG_LEVEL: "info",
  POD_NAME: "bench",
});

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    if (await check().catch(() => false)) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

const answers = async (url: string) => (await fetch(url)).ok;

/** What kubelet probes and a Prometheus scrape do to an idle pod, then quiet, then its RSS. */
async function idleRss(pid: number, probes: string): Promise<number> {
  await fetch(`${probes}/readyz`);
  await (await fetch(`${probes}/metrics`)).text();
  await sleep(5_000);
  return rssBytes(pid);
}

interface Round {
  readonly rps: number;
  readonly errors: number;
  readonly cpuPercent: number;
  readonly peakRss: number;
}

export async function benchWorkloads(): Promise<void> {
  console.log(
    "\n# Workloads (real processes on 127.0.0.1, pod settings: NODE_OPTIONS " +
      `ponger "${workloadNodeOptions.ponger}", pinger "${workloadNodeOptions.pinger}", LOG_LEVEL=info, ` +
      "logs to /dev/null)",
  );
  if (distEntry.length >= longScriptPath) {
    console.log(
      `  note: ${distEntry} is ${distEntry.length} characters long; from ${longScriptPath} on, Node's idle RSS is` +
        ` about 2 MiB higher than from the image's /app/dist/pingpong.cjs. Run from a shorter checkout path.`,
    );
  }
  const tools = await goTools();
  const pki = await mintTestPki("bench");
  const dir = await mkdtemp(join(tmpdir(), "bench-workloads-"));
  const file = (name: string) => join(dir, name);
  const started: Process[] = [];
  const start = async (...args: Parameters<typeof startPinned>) => {
    const p = await startPinned(...args);
    started.push(p);
    return p;
  };
  const stop = async (p: Process) => {
    started.splice(started.indexOf(p), 1);
    await p.stop();
  };
  try {
    const pingPort = await freePort();
    const goPort = await freePort();
    const pongerProbesPort = await freePort();
    const pingerProbesPort = await freePort();
    const barePort = await freePort();
    const pongerProbes = `http://127.0.0.1:${pongerProbesPort}`;
    const pingerProbes = `http://127.0.0.1:${pingerProbesPort}`;
    await Promise.all([
      writeFile(file("ca.crt"), pki.ca.certificatePem),
      writeFile(file("server.crt"), pki.server.certificatePem),
      writeFile(file("server.key"), pki.server.privateKeyPem),
      writeFile(file("client.crt"), pki.client.certificatePem),
      writeFile(file("client.key"), pki.client.privateKeyPem),
      // JSON, as the operator writes the pods' config files.
      writeFile(
        file("ponger.yaml"),
        JSON.stringify({
          service: {
            address: "127.0.0.1",
            port: pingPort,
            protocol: "https",
            tlsCertificate: file("server.crt"),
            tlsPrivateKey: file("server.key"),
            clientCA: file("ca.crt"),
          },
          metrics: { address: "127.0.0.1", port: pongerProbesPort },
        }),
      ),
    ]);
    const pingerConfig = async (interval: string) =>
      writeFile(
        file("pinger.yaml"),
        JSON.stringify({
          ponger: {
            url: `https://127.0.0.1:${pingPort}/ping`,
            acceptCert: file("ca.crt"),
            clientCertificate: file("client.crt"),
            clientPrivateKey: file("client.key"),
          },
          interval,
          metrics: { address: "127.0.0.1", port: pingerProbesPort },
        }),
      );

    // Idle memory.
    const bare = await start(
      "bare",
      undefined,
      process.execPath,
      ["-e", `require("node:http").createServer((q, s) => s.end("pong")).listen(${barePort}, "127.0.0.1")`],
      podEnv("ponger"),
    );
    await until("the bare Node server", () => answers(`http://127.0.0.1:${barePort}/`));
    await sleep(5_000);
    const bareRss = await rssBytes(bare.pid);
    await stop(bare);

    const ponger = await start(
      "ponger",
      0,
      process.execPath,
      [distEntry, "ponger", "--config", file("ponger.yaml")],
      podEnv("ponger"),
    );
    await until("the ponger", () => answers(`${pongerProbes}/readyz`));
    const pongerIdle = await idleRss(ponger.pid, pongerProbes);

    await pingerConfig("1s");
    let pinger = await start(
      "pinger",
      undefined,
      process.execPath,
      [distEntry, "pinger", "--config", file("pinger.yaml")],
      podEnv("pinger"),
    );
    await until("the pinger", () => answers(`${pingerProbes}/readyz`));
    const pingerStarted = performance.now();
    const pingerIdle = await idleRss(pinger.pid, pingerProbes);
    // In service: RSS keeps growing for a while after start, as V8 compiles the functions that run
    // and its heap fills up to its first collections; read both again once the pair has run a while.
    const steadySeconds = Number(process.env.BENCH_STEADY_SECONDS ?? 90);
    await sleep(Math.max(0, steadySeconds * 1000 - (performance.now() - pingerStarted)));
    for (const probes of [pongerProbes, pingerProbes]) await (await fetch(`${probes}/metrics`)).text();
    const [pongerSteady, pingerSteady] = [await rssBytes(ponger.pid), await rssBytes(pinger.pid)];
    await stop(pinger);

    const refponger = await start("refponger", 0, tools.refponger, [
      "-addr",
      `127.0.0.1:${goPort}`,
      "-cert",
      file("server.crt"),
      "-key",
      file("server.key"),
      "-client-ca",
      file("ca.crt"),
    ]);
    await sleep(5_000);
    const goIdle = await rssBytes(refponger.pid);

    report("bare Node HTTP server, idle RSS (Node's floor)", mib(bareRss), "MiB");
    report("ponger idle RSS (target <= 55 MiB)", mib(pongerIdle), "MiB");
    report("pinger idle RSS, 1 ping/s (target <= 55 MiB)", mib(pingerIdle), "MiB");
    report(`ponger RSS after ${steadySeconds} s answering 1 ping/s`, mib(pongerSteady), "MiB");
    report(`pinger RSS after ${steadySeconds} s at 1 ping/s`, mib(pingerSteady), "MiB");
    report("Go reference ponger idle RSS", mib(goIdle), "MiB");

    // Throughput, A/B alternated.
    const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
    const seconds = Number(process.env.BENCH_SECONDS ?? 8);
    const drive = async (server: Process, port: number): Promise<Round> => {
      const cpuBefore = await cpuSeconds(server.pid);
      const wallBefore = performance.now();
      let peakRss = 0;
      const sampler = setInterval(() => {
        void rssBytes(server.pid).then((rss) => (peakRss = Math.max(peakRss, rss)));
      }, 250);
      try {
        const args = [
          tools.loadgen,
          `-url=https://127.0.0.1:${port}/ping`,
          `-ca=${file("ca.crt")}`,
          `-cert=${file("client.crt")}`,
          `-key=${file("client.key")}`,
          "-connections=32",
          "-warmup=2s",
          `-duration=${seconds}s`,
        ];
        const { stdout } = hasTaskset
          ? await run("taskset", ["-c", "1", ...args])
          : await run(args[0] ?? "", args.slice(1));
        const result = JSON.parse(stdout) as { requestsPerSecond: number; errors: number };
        const cpu = (await cpuSeconds(server.pid)) - cpuBefore;
        return {
          rps: result.requestsPerSecond,
          errors: result.errors,
          cpuPercent: (cpu / ((performance.now() - wallBefore) / 1000)) * 100,
          peakRss: Math.max(peakRss, await rssBytes(server.pid)),
        };
      } finally {
        clearInterval(sampler);
      }
    };
    const describe = (r: Round) =>
      `${r.rps.toFixed(0)} req/s, CPU ${r.cpuPercent.toFixed(0)}%, RSS ${mib(r.peakRss).toFixed(1)} MiB, ${r.errors} errors`;
    console.log(
      `ponger vs Go ponger: mTLS + keep-alive, 32 connections, ${seconds} s per run after 2 s warm-up, ` +
        (hasTaskset ? "servers on core 0, load generator on core 1" : "NOT pinned (no taskset)"),
    );
    const ratios: number[] = [];
    const ours: Round[] = [];
    const theirs: Round[] = [];
    for (let round = 1; round <= rounds; round++) {
      const goFirst = round % 2 === 0;
      const first = goFirst ? await drive(refponger, goPort) : await drive(ponger, pingPort);
      const second = goFirst ? await drive(ponger, pingPort) : await drive(refponger, goPort);
      const [ts, go] = goFirst ? [second, first] : [first, second];
      ours.push(ts);
      theirs.push(go);
      ratios.push(ts.rps / go.rps);
      console.log(
        `  round ${round} (${goFirst ? "Go first" : "TypeScript first"}): ponger ${describe(ts)} | Go ${describe(go)} | ratio ${(ts.rps / go.rps).toFixed(2)}x`,
      );
    }
    const median = (values: number[]) =>
      [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;
    report("ponger / Go ponger throughput, median (target >= 1.0x)", median(ratios), "x", `${rounds} rounds`);
    report(
      "ponger req/s, median",
      median(ours.map((r) => r.rps)),
      "req/s",
      `Go: ${median(theirs.map((r) => r.rps)).toFixed(0)}`,
    );
    report(
      "ponger RSS under load, max",
      mib(Math.max(...ours.map((r) => r.peakRss))),
      "MiB",
      `Go: ${mib(Math.max(...theirs.map((r) => r.peakRss))).toFixed(1)} MiB`,
    );
    await stop(refponger);

    // Unauthenticated connections that never start a handshake, twice 3000 of them: what the ponger
    // holds while they are open, and whether its memory comes back once the handshake timeout drops them.
    const floodRss: number[] = [await rssBytes(ponger.pid)];
    let closedByPonger = 0;
    for (let wave = 0; wave < 2; wave++) {
      let closingOurselves = false;
      const sockets = await Promise.all(
        Array.from(
          { length: 3000 },
          () =>
            new Promise<Socket>((resolve) => {
              const socket = connect(pingPort, "127.0.0.1", () => resolve(socket));
              socket.on("error", () => resolve(socket));
              socket.on("close", () => {
                if (!closingOurselves) closedByPonger++;
              });
            }),
        ),
      );
      await sleep(1_000);
      floodRss.push(await rssBytes(ponger.pid));
      await sleep(11_000); // past the 10 s handshake timeout
      closingOurselves = true;
      for (const socket of sockets) socket.destroy();
    }
    await sleep(2_000);
    floodRss.push(await rssBytes(ponger.pid));
    report(
      "ponger RSS, 2 x 3000 idle unauthenticated connections",
      floodRss.map((b) => mib(b).toFixed(0)).join(" -> "),
      "MiB",
      `before, during wave 1, during wave 2, after; ${closedByPonger} of 6000 closed by the ponger (limit 512, handshake timeout 10 s)`,
    );

    // The pinger at 10 pings/s against the TypeScript ponger (which is not measured here).
    await pingerConfig("100ms");
    pinger = await start(
      "pinger",
      1,
      process.execPath,
      [distEntry, "pinger", "--config", file("pinger.yaml")],
      podEnv("pinger"),
    );
    await until("the pinger", () => answers(`${pingerProbes}/readyz`));
    await sleep(5_000);
    const measureSeconds = 30;
    const cpuBefore = await cpuSeconds(pinger.pid);
    const status = async () =>
      (await (await fetch(`${pingerProbes}/status`)).json()) as { sent: number; failed: number };
    const sentBefore = await status();
    await sleep(measureSeconds * 1000);
    const cpu = (await cpuSeconds(pinger.pid)) - cpuBefore;
    const sentAfter = await status();
    report(
      "pinger CPU at 10 pings/s",
      (cpu / measureSeconds) * 100,
      "% of a core",
      `${sentAfter.sent - sentBefore.sent} pings in ${measureSeconds} s, ${sentAfter.failed - sentBefore.failed} failed`,
    );
    report("pinger RSS at 10 pings/s", mib(await rssBytes(pinger.pid)), "MiB");
  } finally {
    await Promise.all(started.map((p) => p.stop()));
    await rm(dir, { recursive: true, force: true });
  }
}
