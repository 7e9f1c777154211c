/** Every command and subcommand of `pingpong` answers --help with its usage, and succeeds. */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { cliPath } from "../workloads/testing/processes.ts";

const run = promisify(execFile);

describe("pingpong --help", () => {
  const commands = [
    [],
    ["operator"],
    ["ponger"],
    ["pinger"],
    ["cluster"],
    ["cluster", "up"],
    ["demo"],
    ["status"],
    ["rotate"],
    ["drill"],
  ];

  it.each(commands.map((c) => [c.join(" ") || "(none)", c]))("%s answers --help", async (_name, command) => {
    for (const flag of ["--help", "-h"]) {
      const { stdout } = await run(process.execPath, [cliPath, ...command, flag]);
      expect(stdout).toMatch(/^Usage: pingpong/);
      if (command.length > 0) expect(stdout).toContain(`pingpong ${command.join(" ")}`);
    }
  });

  it("refuses a drill that injects nothing, saying what to write, with exit code 2", async () => {
    const failure = await run(process.execPath, [cliPath, "drill", "demo"]).catch((e: unknown) => e);
    expect(failure).toMatchObject({ code: 2 });
    expect((failure as { stderr: string }).stderr).toContain(
      "pingpong drill: say what to inject: --abort 50%, --delay 3s or --refuse-client-certs",
    );
  });
});
