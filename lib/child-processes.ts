/**
 * Child processes that must not outlive this one: servers started by the control plane, tests and
 * benchmarks. They are killed when this process exits, and on a signal that nothing else in the
 * process handles (then the signal's default, ending the process, is restored and raised again).
 */
import type { ChildProcess } from "node:child_process";

const running = new Set<ChildProcess>();
let hookInstalled = false;

function killAll(): void {
  for (const child of running) child.kill("SIGKILL");
}

function installHook(): void {
  if (hookInstalled) return;
  hookInstalled = true;
  process.on("exit", killAll);
  for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const) {
    const onSignal = () => {
      if (process.listenerCount(signal) > 1) return; // someone else stops us, in order
      killAll();
      process.off(signal, onSignal);
      process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

/** Kills `child` with this process unless it has ended by then. */
export function killWithParent(child: ChildProcess): void {
  installHook();
  running.add(child);
  child.once("exit", () => running.delete(child));
}
