/**
 * A child process of the control plane: output to a log file, a way to wait for it to be healthy
 * that fails fast (with the log's tail) if it exits, and a stop that escalates to SIGKILL.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { openSync, closeSync, existsSync, readFileSync } from "node:fs";
import { killWithParent } from "../lib/child-processes.ts";

const setpriv = "/usr/bin/setpriv";

export class ManagedProcess {
  readonly name: string;
  readonly logPath: string;
  readonly child: ChildProcess;
  private readonly exit: Promise<number | null>;

  constructor(
    name: string,
    command: string,
    args: readonly string[],
    logPath: string,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.name = name;
    this.logPath = logPath;
    const fd = openSync(logPath, "a");
    try {
      // A process group of its own: Ctrl-C in a terminal signals the whole foreground group, and the
      // control plane must outlive the operator's shutdown, then stop in order (see stop()).
      // setpriv's parent-death signal kills it even when we are killed with SIGKILL and cannot
      // run the hook below; util-linux installs it on every Debian.
      this.child = existsSync(setpriv)
        ? spawn(setpriv, ["--pdeathsig", "KILL", "--", command, ...args], {
            stdio: ["ignore", fd, fd],
            env,
            detached: true,
          })
        : spawn(command, args, { stdio: ["ignore", fd, fd], env, detached: true });
    } finally {
      closeSync(fd);
    }
    // The child has a process group of its own, so it outlives us unless we kill it.
    killWithParent(this.child);
    this.exit = once(this.child, "exit").then(([code]) => code as number | null);
    // A spawn failure (ENOENT) arrives as "error"; the exit promise covers the rest.
    this.child.on("error", () => undefined);
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  tail(lines = 40): string {
    try {
      return readFileSync(this.logPath, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "(no log)";
    }
  }

  /** Polls `healthy` until it is true; throws with the log's tail if the process exits or time runs out. */
  async waitUntil(what: string, healthy: () => Promise<boolean>, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.exited) {
        throw new Error(
          `${this.name} exited (code ${this.child.exitCode}) before ${what}. Last lines of ${this.logPath}:\n${this.tail()}`,
        );
      }
      if (await healthy().catch(() => false)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(
      `${this.name} did not become ${what} within ${timeoutMs / 1000}s. Last lines of ${this.logPath}:\n${this.tail()}`,
    );
  }

  async stop(graceMs = 10_000): Promise<void> {
    if (this.exited) return;
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    await this.exit;
    clearTimeout(timer);
  }
}
