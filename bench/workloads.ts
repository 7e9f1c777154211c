/**
 * Workload benchmark (issue #20's targets). Everything runs as real processes on 127.0.0.1, the
 * programs in their pods' settings (dist/pingpong.cjs as the image's entry point runs them,
 * NODE_OPTIONS from children.ts, LOG_LEVEL info, logs to /dev/null as a container runtime takes them),
 * each next to a bare process that loads the same libraries the same way (bench/bare, bundled by
 * rolldown as the entry point is) with the same settings and none of our code:
 *
 * - idle RSS of the ponger and the pinger against their bare twins, alternated over several rounds,
 *   and RSS after BENCH_STEADY_SECONDS (90) in service with all four running side by side;
 * - ponger throughput over mutual TLS with keep-alive against the bare fastify server (one pino line
 *   per request, as the ponger writes; and without, to show what the line costs) and the seed-style Go
 *   ponger: each pinned to core 0, driven in turn by the same Go load generator (core 1, 32
 *   connections), the order rotated every round;
 * - 2 x 3000 connections that never start TLS: the ponger's RSS, and whether a real ping gets through;
 * - the pinger's CPU at 10 pings/s next to the bare pinger's.
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
import { build } from "rolldown";
import { mintTestPki } from "../lib/pki/testing/fixtures.ts";
import { workloadNodeOptions } from "../operator/pingpongpair/children.ts";
import { cpuSeconds, report } from "./report.ts";

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
async function idleRss(pid: number, probes: string, quietMs = 5_000): Promise<number> {
  await fetch(`${probes}/readyz`);
  await (await fetch(`${probes}/metrics`)).text();
  await sleep(quietMs);
  return rssBytes(pid);
}

/** bench/bare/*.ts bundled into CommonJS files the way `npm run build` bundles the entry point. */
async function bareBundles(dir: string): Promise<{ ponger: string; pinger: string }> {
  const out = { ponger: join(dir, "bare-ponger.cjs"), pinger: join(dir, "bare-pinger.cjs") };
  for (const [name, file] of Object.entries(out)) {
    await build({
      input: fileURLToPath(new URL(`./bare/${name}.ts`, import.meta.url)),
      platform: "node",
      logLevel: "warn",
      output: { file, format: "cjs" },
    });
  }
  return out;
}

const median = (values: readonly number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;

interface Round {
  readonly rps: number;
  readonly errors: number;
  readonly cpuPercent: number;
  readonly peakRss: number;
}

/** BENCH_PARTS (comma-separated) runs only some parts: memory, steady, throughput, flood, pinger. */
const parts = new Set((process.env.BENCH_PARTS ?? "memory,steady,throughput,flood,pinger").split(","));

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
  const bare = await bareBundles(dir);
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
    await Promise.all([
      writeFile(file("ca.crt"), pki.ca.certificatePem),
      writeFile(file("server.crt"), pki.server.certificatePem),
      writeFile(file("server.key"), pki.server.privateKeyPem),
      writeFile(file("client.crt"), pki.client.certificatePem),
      writeFile(file("client.key"), pki.client.privateKeyPem),
    ]);
    /** Our ponger on `port`, probes on `probesPort`; the config as JSON, as the operator writes it. */
    const startPonger = async (name: string, port: number, probesPort: number, core?: number) => {
      const config = file(`${name}.json`);
      await writeFile(
        config,
        JSON.stringify({
          service: {
            address: "127.0.0.1",
            port,
            protocol: "https",
            tlsCertificate: file("server.crt"),
            tlsPrivateKey: file("server.key"),
            clientCA: file("ca.crt"),
          },
          metrics: { address: "127.0.0.1", port: probesPort },
        }),
      );
      const p = await start(
        name,
        core,
        process.execPath,
        [distEntry, "ponger", "--config", config],
        podEnv("ponger"),
      );
      await until(name, () => answers(`http://127.0.0.1:${probesPort}/readyz`));
      return p;
    };
    const startBarePonger = async (
      name: string,
      port: number,
      probesPort: number,
      log: boolean,
      core?: number,
    ) => {
      const args = [
        bare.ponger,
        file("server.crt"),
        file("server.key"),
        file("ca.crt"),
        String(port),
        String(probesPort),
      ];
      const p = await start(name, core, process.execPath, log ? [...args, "--log"] : args, podEnv("ponger"));
      await until(name, () => answers(`http://127.0.0.1:${probesPort}/readyz`));
      return p;
    };
    const startPinger = async (
      name: string,
      pongerPort: number,
      probesPort: number,
      interval: string,
      core?: number,
    ) => {
      const config = file(`${name}.json`);
      await writeFile(
        config,
        JSON.stringify({
          ponger: {
            url: `https://127.0.0.1:${pongerPort}/ping`,
            acceptCert: file("ca.crt"),
            clientCertificate: file("client.crt"),
            clientPrivateKey: file("client.key"),
          },
          interval,
          metrics: { address: "127.0.0.1", port: probesPort },
        }),
      );
      const p = await start(
        name,
        core,
        process.execPath,
        [distEntry, "pinger", "--config", config],
        podEnv("pinger"),
      );
      await until(name, () => answers(`http://127.0.0.1:${probesPort}/readyz`));
      return p;
    };
    const startBarePinger = async (
      name: string,
      pongerPort: number,
      probesPort: number,
      intervalMs: number,
      core?: number,
    ) => {
      const args = [
        bare.pinger,
        `https://127.0.0.1:${pongerPort}/ping`,
        file("client.crt"),
        file("client.key"),
        file("ca.crt"),
        String(probesPort),
        String(intervalMs),
      ];
      const p = await start(name, core, process.execPath, args, podEnv("pinger"));
      await until(name, () => answers(`http://127.0.0.1:${probesPort}/readyz`));
      return p;
    };

    // A ponger of ours for the pingers to ping where the ponger is not what is measured.
    const target = { port: await freePort(), probes: await freePort() };
    const targetPonger = await startPonger("target", target.port, target.probes);

    if (parts.has("memory")) {
      // Node's floor: an empty node:http server.
      const barePort = await freePort();
      const floor = await start(
        "floor",
        undefined,
        process.execPath,
        ["-e", `require("node:http").createServer((q, s) => s.end("pong")).listen(${barePort}, "127.0.0.1")`],
        podEnv("ponger"),
      );
      await until("the empty Node server", () => answers(`http://127.0.0.1:${barePort}/`));
      await sleep(5_000);
      const floorRss = await rssBytes(floor.pid);
      await stop(floor);
      report("empty node:http server, idle RSS (Node's floor)", mib(floorRss), "MiB");

      // Idle memory, ours and bare alternated. The pingers ping a ponger of ours that is not measured.
      const memoryRounds = Number(process.env.BENCH_MEMORY_ROUNDS ?? 3);
      const idle = {
        ponger: [] as number[],
        barePonger: [] as number[],
        pinger: [] as number[],
        barePinger: [] as number[],
      };
      for (let round = 0; round < memoryRounds; round++) {
        for (const kind of round % 2 === 0 ? (["ours", "bare"] as const) : (["bare", "ours"] as const)) {
          const [port, probes, pingerProbes] = [await freePort(), await freePort(), await freePort()];
          const ponger =
            kind === "ours"
              ? await startPonger("ponger", port, probes)
              : await startBarePonger("bare ponger", port, probes, true);
          (kind === "ours" ? idle.ponger : idle.barePonger).push(
            await idleRss(ponger.pid, `http://127.0.0.1:${probes}`),
          );
          await stop(ponger);
          const pinger =
            kind === "ours"
              ? await startPinger("pinger", target.port, pingerProbes, "1s")
              : await startBarePinger("bare pinger", target.port, pingerProbes, 1000);
          (kind === "ours" ? idle.pinger : idle.barePinger).push(
            await idleRss(pinger.pid, `http://127.0.0.1:${pingerProbes}`, 10_000),
          );
          await stop(pinger);
        }
      }
      const ratioLine = (name: string, ours: number[], theirs: number[], target: string) =>
        report(
          name,
          mib(median(ours)),
          "MiB",
          `bare: ${mib(median(theirs)).toFixed(1)} MiB, ratio ${(median(ours) / median(theirs)).toFixed(3)} (${target}); medians of ${ours.length}`,
        );
      ratioLine("ponger idle RSS", idle.ponger, idle.barePonger, "target <= 1.10");
      ratioLine("pinger idle RSS, 1 ping/s", idle.pinger, idle.barePinger, "target <= 1.10");
    }

    if (parts.has("steady")) {
      // In service, side by side: each pinger pings its own kind of ponger once a second.
      const steadySeconds = Number(process.env.BENCH_STEADY_SECONDS ?? 90);
      const ports = {
        ours: await freePort(),
        oursProbes: await freePort(),
        bare: await freePort(),
        bareProbes: await freePort(),
      };
      const steady = {
        ponger: await startPonger("ponger", ports.ours, ports.oursProbes),
        barePonger: await startBarePonger("bare ponger", ports.bare, ports.bareProbes, true),
        pinger: await startPinger("pinger", ports.ours, await freePort(), "1s"),
        barePinger: await startBarePinger("bare pinger", ports.bare, await freePort(), 1000),
      };
      await sleep(steadySeconds * 1000);
      const steadyRss = Object.fromEntries(
        await Promise.all(
          Object.entries(steady).map(async ([name, p]) => [name, await rssBytes(p.pid)] as const),
        ),
      );
      const shown = (a: string, b: string) =>
        `${mib(steadyRss[a] ?? 0).toFixed(1)} MiB, bare ${mib(steadyRss[b] ?? 0).toFixed(1)} MiB, ratio ${((steadyRss[a] ?? 0) / (steadyRss[b] ?? 1)).toFixed(3)}`;
      report(`ponger RSS after ${steadySeconds} s answering 1 ping/s`, shown("ponger", "barePonger"));
      report(`pinger RSS after ${steadySeconds} s at 1 ping/s`, shown("pinger", "barePinger"));
      for (const p of Object.values(steady)) await stop(p);
    }

    if (parts.has("throughput")) {
      // Throughput: four servers on core 0, one at a time, the same load generator on core 1.
      const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
      const seconds = Number(process.env.BENCH_SECONDS ?? 8);
      const servers = {
        ponger: { port: await freePort(), probes: await freePort() },
        "bare fastify + pino line": { port: await freePort(), probes: await freePort() },
        "bare fastify, no log": { port: await freePort(), probes: await freePort() },
        "Go ponger": { port: await freePort(), probes: 0 },
      };
      const running: Record<keyof typeof servers, Process> = {
        ponger: await startPonger("ponger", servers.ponger.port, servers.ponger.probes, 0),
        "bare fastify + pino line": await startBarePonger(
          "bare+log",
          servers["bare fastify + pino line"].port,
          servers["bare fastify + pino line"].probes,
          true,
          0,
        ),
        "bare fastify, no log": await startBarePonger(
          "bare",
          servers["bare fastify, no log"].port,
          servers["bare fastify, no log"].probes,
          false,
          0,
        ),
        "Go ponger": await start("refponger", 0, tools.refponger, [
          "-addr",
          `127.0.0.1:${servers["Go ponger"].port}`,
          "-cert",
          file("server.crt"),
          "-key",
          file("server.key"),
          "-client-ca",
          file("ca.crt"),
        ]),
      };
      await sleep(2_000);
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
      console.log(
        `ponger throughput: mTLS + keep-alive, 32 connections, ${seconds} s per run after 2 s warm-up, ` +
          (hasTaskset ? "servers on core 0, load generator on core 1" : "NOT pinned (no taskset)") +
          ", order rotated each round",
      );
      const names = Object.keys(servers) as (keyof typeof servers)[];
      const results = Object.fromEntries(names.map((n) => [n, [] as Round[]])) as Record<
        keyof typeof servers,
        Round[]
      >;
      const ratios = { bare: [] as number[], bareNoLog: [] as number[], go: [] as number[] };
      for (let round = 0; round < rounds; round++) {
        const order = names.map((_, i) => names[(i + round) % names.length] as keyof typeof servers);
        const thisRound = {} as Record<keyof typeof servers, Round>;
        for (const name of order) thisRound[name] = await drive(running[name], servers[name].port);
        for (const name of names) results[name].push(thisRound[name]);
        ratios.bare.push(thisRound.ponger.rps / thisRound["bare fastify + pino line"].rps);
        ratios.bareNoLog.push(thisRound.ponger.rps / thisRound["bare fastify, no log"].rps);
        ratios.go.push(thisRound.ponger.rps / thisRound["Go ponger"].rps);
        console.log(
          `  round ${round + 1} (${order.join(" > ")}): ` +
            names
              .map(
                (n) =>
                  `${n} ${thisRound[n].rps.toFixed(0)} req/s ${thisRound[n].cpuPercent.toFixed(0)}% CPU ${thisRound[n].errors} err`,
              )
              .join(" | "),
        );
      }
      for (const name of names) {
        const r = results[name];
        report(
          `${name}: req/s, median`,
          median(r.map((x) => x.rps)),
          "req/s",
          `RSS under load max ${mib(Math.max(...r.map((x) => x.peakRss))).toFixed(1)} MiB, errors ${r.reduce((a, x) => a + x.errors, 0)}`,
        );
      }
      report(
        "ponger / bare fastify (+ pino line), median (target >= 0.95)",
        median(ratios.bare),
        "x",
        `${rounds} rounds: ${ratios.bare.map((r) => r.toFixed(2)).join(" ")}`,
      );
      report("ponger / bare fastify without a log line, median", median(ratios.bareNoLog), "x");
      report("ponger / Go ponger, median (reference)", median(ratios.go), "x");
      for (const name of names) await stop(running[name]);
    }

    if (parts.has("flood")) {
      // Connections that never start TLS, twice 3000 of them: what the ponger holds, whether a real ping
      // gets through meanwhile, and whether its memory comes back.
      const pingPort = target.port;
      const ponger = targetPonger;
      const floodRss: number[] = [await rssBytes(ponger.pid)];
      const pingDuring: string[] = [];
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
                socket.resume();
                socket.on("close", () => {
                  if (!closingOurselves) closedByPonger++;
                });
              }),
          ),
        );
        await sleep(500);
        floodRss.push(await rssBytes(ponger.pid));
        pingDuring.push(await pingOnce(`https://127.0.0.1:${pingPort}/ping`, file));
        await sleep(6_000); // past the 5 s handshake timeout
        closingOurselves = true;
        for (const socket of sockets) socket.destroy();
      }
      await sleep(2_000);
      floodRss.push(await rssBytes(ponger.pid));
      report(
        "ponger RSS, 2 x 3000 unauthenticated connections",
        floodRss.map((b) => mib(b).toFixed(0)).join(" -> "),
        "MiB",
        `before, wave 1, wave 2, after; ${closedByPonger} of 6000 closed by the ponger; a real ping during each wave: ${pingDuring.join(", ")}`,
      );
    }

    if (parts.has("pinger")) {
      // The pingers at 10 pings/s against the ponger (which is not measured here), side by side.
      const fast = {
        pinger: await startPinger("pinger", target.port, await freePort(), "100ms", 1),
        barePinger: await startBarePinger("bare pinger", target.port, await freePort(), 100, 1),
      };
      await sleep(5_000);
      const measureSeconds = 30;
      const cpuBefore = {
        pinger: await cpuSeconds(fast.pinger.pid),
        barePinger: await cpuSeconds(fast.barePinger.pid),
      };
      await sleep(measureSeconds * 1000);
      const cpu = {
        pinger: ((await cpuSeconds(fast.pinger.pid)) - cpuBefore.pinger) / measureSeconds,
        barePinger: ((await cpuSeconds(fast.barePinger.pid)) - cpuBefore.barePinger) / measureSeconds,
      };
      report(
        "pinger CPU at 10 pings/s",
        cpu.pinger * 100,
        "% of a core",
        `bare pinger ${(cpu.barePinger * 100).toFixed(2)}%`,
      );
      report(
        "pinger RSS at 10 pings/s",
        mib(await rssBytes(fast.pinger.pid)),
        "MiB",
        `bare pinger ${mib(await rssBytes(fast.barePinger.pid)).toFixed(1)} MiB`,
      );
    }
    await stop(targetPonger);
  } finally {
    await Promise.all(started.map((p) => p.stop()));
    await rm(dir, { recursive: true, force: true });
  }
}

/** One GET /ping over mutual TLS on a new connection: "pong in N ms" or what went wrong. */
async function pingOnce(url: string, file: (name: string) => string): Promise<string> {
  const { Agent, request } = await import("undici");
  const agent = new Agent({
    connect: {
      ca: await readFile(file("ca.crt")),
      cert: await readFile(file("client.crt")),
      key: await readFile(file("client.key")),
    },
  });
  const started = performance.now();
  try {
    const { body } = await request(url, { dispatcher: agent, signal: AbortSignal.timeout(10_000) });
    return `${await body.text()} in ${(performance.now() - started).toFixed(0)} ms`;
  } catch (error) {
    return `failed after ${(performance.now() - started).toFixed(0)} ms (${(error as Error).message})`;
  } finally {
    await agent.destroy();
  }
}
