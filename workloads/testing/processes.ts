/**
 * Runs `pingpong` commands as real processes for tests, straight from the TypeScript sources (Node 24
 * strips the types), and reads their pino JSON logs.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { killWithParent } from "../../lib/child-processes.ts";

export const cliPath = fileURLToPath(new URL("../../cli.ts", import.meta.url));

export type LogLine = Record<string, unknown> & { msg?: string; level?: string };

export class CliProcess {
  readonly child: ChildProcess;
  readonly logs: LogLine[] = [];
  stderr = "";
  private readonly waiters = new Set<() => void>();

  /**
   * `script` is the CLI to run: the TypeScript sources by default, or e.g. dist/cli.js. `prefix` runs
   * it through another command (e.g. setpriv to run as another user).
   */
  constructor(
    args: readonly string[],
    env: Record<string, string> = {},
    script = cliPath,
    prefix: readonly string[] = [],
  ) {
    const [command, ...commandArgs] = [...prefix, process.execPath, script, ...args];
    this.child = spawn(command ?? process.execPath, commandArgs, {
      env: { ...process.env, LOG_LEVEL: "info", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    killWithParent(this.child);
    let buffered = "";
    this.child.stdout?.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split("\n");
      buffered = lines.pop() ?? "";
      for (const line of lines) {
        try {
          this.logs.push(JSON.parse(line) as LogLine);
        } catch {
          this.logs.push({ msg: line, level: "raw" });
        }
      }
      for (const wake of this.waiters) wake();
    });
    this.child.stderr?.on("data", (chunk: Buffer) => (this.stderr += chunk.toString()));
  }

  /** Resolves with the first log line matching, failing with the logs so far after `timeoutMs`. */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs = 20_000): Promise<LogLine> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.logs.find(match);
        if (found) {
          cleanup();
          resolve(found);
        }
      };
      const onExit = () => {
        cleanup();
        reject(
          new Error(
            `process exited (${this.child.exitCode}) before the expected log line; stderr: ${this.stderr}`,
          ),
        );
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(
          new Error(
            `timed out waiting for a log line; last logs:\n${this.logs
              .slice(-10)
              .map((l) => JSON.stringify(l))
              .join("\n")}\nstderr: ${this.stderr}`,
          ),
        );
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
        this.child.off("exit", onExit);
      };
      this.waiters.add(check);
      this.child.once("exit", onExit);
      check();
    });
  }

  /** The value of a field in the first log line with message `msg`, e.g. the URL a server bound. */
  async logged(msg: string, field: string): Promise<string> {
    const line = await this.waitForLog((l) => l.msg === msg);
    const value = line[field];
    if (typeof value !== "string") throw new Error(`log line "${msg}" has no string field ${field}`);
    return value;
  }

  /** Whether the process has ended, by exiting or by a signal. */
  get ended(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** Sends a signal and resolves with the exit code (null when a signal ended it). */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<number | null> {
    if (this.ended) return this.child.exitCode;
    const exited = once(this.child, "exit");
    this.child.kill(signal);
    const [code] = (await exited) as [number | null];
    return code;
  }

  async exited(): Promise<number | null> {
    if (this.ended) return this.child.exitCode;
    const [code] = (await once(this.child, "exit")) as [number | null];
    return code;
  }
}
