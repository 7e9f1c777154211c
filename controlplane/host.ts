/**
 * Commands the node runs on the host (ip, nft, ctr, umount) and what it reads back from /proc. Every
 * failure names the command and carries its stderr, so a node that cannot start says why.
 */
import { execFile } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";

export class HostCommandError extends Error {
  override readonly name = "HostCommandError";
  readonly command: string;
  readonly stderr: string;

  constructor(command: string, stderr: string, code: number | string | null) {
    super(`\`${command}\` failed (${code ?? "signal"}): ${stderr.trim() || "(no output)"}`);
    this.command = command;
    this.stderr = stderr;
  }
}

/** Runs a command and resolves with its stdout; `input` is written to its stdin. */
export function host(command: string, args: readonly string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(command, args, { maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) {
        const code = (error as { code?: number | string }).code ?? null;
        reject(new HostCommandError([command, ...args].join(" "), stderr || error.message, code));
      } else {
        resolve(stdout);
      }
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Mount points at or below `dir`, deepest first (the order to unmount them in). */
export async function mountsUnder(dir: string): Promise<string[]> {
  const prefix = dir.endsWith("/") ? dir : `${dir}/`;
  const text = await readFile("/proc/self/mountinfo", "utf8");
  const points = text
    .split("\n")
    .map((line) => line.split(" ")[4])
    .filter((point): point is string => point !== undefined)
    // mountinfo escapes spaces and such as octal: \040
    .map((point) =>
      point.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8))),
    )
    .filter((point) => point === dir || point.startsWith(prefix));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/** Unmounts everything at or below `dir`; throws naming what is still mounted. */
export async function unmountAllUnder(dir: string): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const points = await mountsUnder(dir);
    if (points.length === 0) return;
    for (const point of points) await host("umount", [point]).catch(() => host("umount", ["-l", point]));
  }
  const left = await mountsUnder(dir);
  if (left.length > 0) throw new Error(`still mounted under ${dir}: ${left.join(", ")}`);
}

export interface HostProcess {
  readonly pid: number;
  readonly argv: readonly string[];
}

/** Every process one of whose arguments contains `needle` (a path, a socket). */
export async function processesMentioning(needle: string): Promise<HostProcess[]> {
  const found: HostProcess[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    const argv = cmdline.split("\0").filter(Boolean);
    if (entry !== String(process.pid) && argv.some((arg) => arg.includes(needle)))
      found.push({ pid: Number(entry), argv });
  }
  return found;
}

/** Whether a process with this id exists. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
