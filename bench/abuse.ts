/**
 * The workloads tried as an attacker would, on 127.0.0.1 only, as real processes in their pods'
 * settings; prints what each attempt got and how long it took. BENCH_ENTRY runs another build's entry
 * point through the same attempts (e.g. an older checkout's dist/pingpong.cjs), for a before/after
 * table: `BENCH_ENTRY=/tmp/old/dist/pingpong.cjs npm run bench -- abuse`; BENCH_PONGER_NODE_OPTIONS and
 * BENCH_PINGER_NODE_OPTIONS give that build's pod settings.
 */
import { spawn } from "node:child_process";
import { mkdtemp, open, readFile, rm, writeFile } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { fileURLToPath } from "node:url";
import { killWithParent } from "../lib/child-processes.ts";
import { freePort } from "../lib/ports.ts";
import { mintTestPki, type TestPki } from "../lib/pki/testing/fixtures.ts";
import { workloadNodeOptions } from "../operator/pingpongpair/children.ts";
import { type HostileAnswer, startHostilePonger } from "../workloads/testing/hostile-ponger.ts";
import { report } from "./report.ts";

const entry = process.env.BENCH_ENTRY ?? fileURLToPath(new URL("../dist/pingpong.cjs", import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ms = (since: number) => `${(performance.now() - since).toFixed(0)} ms`;

interface Program {
  readonly pid: number;
  stop(): Promise<void>;
}

async function program(component: "ponger" | "pinger", config: string): Promise<Program> {
  const devNull = await open("/dev/null", "w");
  const child = spawn(process.execPath, [entry, component, "--config", config], {
    stdio: ["ignore", devNull.fd, "inherit"],
    env: {
      ...process.env,
      // An older build ran with its own pod settings (the hand-written pinger ran --jitless).
      NODE_OPTIONS:
        process.env[`BENCH_${component.toUpperCase()}_NODE_OPTIONS`] ?? workloadNodeOptions[component],
      LOG_LEVEL: "info",
      POD_NAME: "abuse",
    },
  });
  killWithParent(child);
  return {
    pid: child.pid ?? 0,
    stop: async () => {
      const exited = new Promise((r) => child.once("exit", r));
      if (child.exitCode === null) child.kill("SIGKILL");
      await exited;
      await devNull.close();
    },
  };
}

async function until(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check().catch(() => false)) return;
    await sleep(50);
  }
  throw new Error("timed out waiting for a program to start");
}

/**
 * Writes `request` on a new connection and waits for the first line of an answer, the server closing,
 * or `limitMs`. Returns what happened and when.
 */
function attempt(
  port: number,
  request: string,
  tls?: { ca: string; cert?: string; key?: string },
  limitMs = 60_000,
): Promise<string> {
  const started = performance.now();
  return new Promise((resolve) => {
    let answer = "";
    const done = (what: string) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(`${what} after ${ms(started)}`);
    };
    const socket: Socket = tls
      ? tlsConnect({ port, host: "127.0.0.1", servername: "localhost", ...tls }, () => socket.write(request))
      : connect(port, "127.0.0.1", () => socket.write(request));
    const timer = setTimeout(() => done("no answer"), limitMs);
    socket.on("data", (chunk: Buffer) => {
      answer += chunk.toString("latin1");
      if (answer.includes("\r\n")) done(`"${answer.slice(0, answer.indexOf("\r\n"))}"`);
    });
    socket.on("error", (error: Error & { code?: string }) => done(`error ${error.code ?? error.message}`));
    socket.on("close", () => done("closed without an answer"));
  });
}

/** The slowest /healthz answer while `during` runs, probing every 100 ms. */
async function probeLatencyDuring<T>(
  probes: string,
  during: Promise<T>,
): Promise<{ result: T; worst: string }> {
  let worst = 0;
  let failed = 0;
  const state = { running: true };
  const prober = (async () => {
    while (state.running) {
      const started = performance.now();
      try {
        await (await fetch(`${probes}/healthz`, { signal: AbortSignal.timeout(60_000) })).text();
      } catch {
        failed++;
      }
      worst = Math.max(worst, performance.now() - started);
      await sleep(100);
    }
  })();
  const result = await during;
  state.running = false;
  await prober;
  return {
    result,
    worst: `/healthz slowest ${worst.toFixed(0)} ms${failed > 0 ? `, ${failed} failed` : ""}`,
  };
}

/** Opens `count` connections that send `first` (or nothing) and keep them open until closed. */
async function park(port: number, count: number, first?: string): Promise<{ open(): number; close(): void }> {
  const sockets = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<Socket>((resolve) => {
          const socket = connect(port, "127.0.0.1", () => {
            if (first !== undefined) socket.write(first);
            resolve(socket);
          });
          socket.resume();
          socket.on("error", () => resolve(socket));
        }),
    ),
  );
  return {
    open: () => sockets.filter((s) => !s.destroyed && !s.readableEnded).length,
    close: () => {
      for (const socket of sockets) socket.destroy();
    },
  };
}

async function rss(pid: number): Promise<string> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  return `${(Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1]) / 1024).toFixed(0)} MiB`;
}

export async function benchAbuse(): Promise<void> {
  console.log(`\n# Abuse (127.0.0.1 only), entry point ${entry}`);
  const dir = await mkdtemp(join(tmpdir(), "bench-abuse-"));
  const stops: (() => Promise<unknown>)[] = [];
  try {
    const pki: TestPki = await mintTestPki("abuse");
    const file = async (name: string, text: string) => {
      await writeFile(join(dir, name), text);
      return join(dir, name);
    };
    const [ca, serverCrt, serverKey] = await Promise.all([
      file("ca.crt", pki.ca.certificatePem),
      file("server.crt", pki.server.certificatePem),
      file("server.key", pki.server.privateKeyPem),
    ]);
    const [pingPort, probePort] = [await freePort(), await freePort()];
    const probes = `http://127.0.0.1:${probePort}`;
    const ponger = await program(
      "ponger",
      await file(
        "ponger.json",
        JSON.stringify({
          service: {
            address: "127.0.0.1",
            port: pingPort,
            protocol: "https",
            tlsCertificate: serverCrt,
            tlsPrivateKey: serverKey,
            clientCA: ca,
          },
          metrics: { address: "127.0.0.1", port: probePort },
        }),
      ),
    );
    stops.push(() => ponger.stop());
    await until(async () => (await fetch(`${probes}/readyz`)).ok);
    const trusted = {
      ca: pki.ca.certificatePem,
      cert: pki.client.certificatePem,
      key: pki.client.privateKeyPem,
    };

    for (const spaces of [1000, 2000, 4000]) {
      const hostile = (path: string) =>
        `GET ${path} HTTP/1.1\r\nhost: x\r\nx-a: ${" ".repeat(spaces)}\u0001\r\n\r\n`;
      const noCert = await probeLatencyDuring(
        probes,
        attempt(pingPort, hostile("/ping"), { ca: pki.ca.certificatePem }),
      );
      report(`ponger, ${spaces}-space header, no client certificate`, noCert.result, "", noCert.worst);
      const withCert = await probeLatencyDuring(probes, attempt(pingPort, hostile("/ping"), trusted));
      report(`ponger, ${spaces}-space header, trusted client`, withCert.result, "", withCert.worst);
      const probe = await attempt(probePort, hostile("/healthz"));
      report(`probe port, ${spaces}-space header`, probe);
    }

    const parked = await park(probePort, 200);
    await sleep(1_000);
    const first = await probeLatencyDuring(probes, sleep(3_000));
    report(
      "probe port, 200 connections parked: /healthz",
      first.worst,
      "",
      `${parked.open()} parked still open after 4 s`,
    );
    await sleep(8_000);
    report("  ... 12 s later", `${parked.open()} parked still open`);
    parked.close();

    const flood = await park(pingPort, 600);
    await sleep(500);
    report(
      "ponger, 600 connections that never start TLS: a real ping",
      await attempt(pingPort, "GET /ping HTTP/1.1\r\nhost: x\r\n\r\n", trusted, 30_000),
    );
    flood.close();

    // The pinger against hostile pongers (plain HTTP, so that only the answer's bytes matter).
    const good = "HTTP/1.1 200 OK\r\nx-ponger-pod: hostile\r\n";
    const chunked = `${good}transfer-encoding: chunked\r\n\r\n`;
    const answers: [string, HostileAnswer][] = [
      [
        "a header of 2000 spaces and a control byte",
        `${good}x-a: ${" ".repeat(2000)}\u0001\r\ncontent-length: 4\r\n\r\npong`,
      ],
      ["chunk data without its CRLF", `${chunked}4\r\npongXX0\r\n\r\n`],
      [
        "Content-Length and Transfer-Encoding",
        `${good}content-length: 4\r\ntransfer-encoding: chunked\r\n\r\n4\r\npong\r\n0\r\n\r\n`,
      ],
      ["status 000", "HTTP/1.1 000 OK\r\ncontent-length: 4\r\n\r\npong"],
      ["an endless chunk-size line", { head: `${chunked}4;`, forever: "a".repeat(1000) }],
      ["endless trailers", { head: `${chunked}4\r\npong\r\n0\r\n`, forever: `x-t: ${"a".repeat(1000)}\r\n` }],
    ];
    for (const [name, answer] of answers) {
      const hostile = await startHostilePonger(answer);
      const pingerProbe = await freePort();
      const pinger = await program(
        "pinger",
        await file(
          "pinger.json",
          JSON.stringify({
            ponger: { url: hostile.url },
            interval: "1s",
            timeout: "2s",
            metrics: { address: "127.0.0.1", port: pingerProbe },
          }),
        ),
      );
      const started = performance.now();
      let status: {
        failed?: number;
        succeeded?: number;
        lastFailure?: { reason: string; message: string } | null;
      } = {};
      for (let i = 0; i < 600 && (status.failed ?? 0) + (status.succeeded ?? 0) === 0; i++) {
        await sleep(100);
        try {
          status = (await (
            await fetch(`http://127.0.0.1:${pingerProbe}/status`, { signal: AbortSignal.timeout(60_000) })
          ).json()) as typeof status;
        } catch {
          // Not serving (yet, or its event loop is busy).
        }
      }
      const outcome = status.lastFailure
        ? `${status.lastFailure.reason}: ${status.lastFailure.message.slice(0, 90)}`
        : (status.succeeded ?? 0) > 0
          ? "accepted as a pong"
          : "no result";
      report(
        `pinger, ${name}`,
        `${outcome} (first result after ${ms(started)})`,
        "",
        `pinger RSS ${await rss(pinger.pid)}`,
      );
      await pinger.stop();
      await hostile.close();
    }
  } finally {
    for (const stop of stops) await stop();
    await rm(dir, { recursive: true, force: true });
  }
}
