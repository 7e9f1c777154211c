/**
 * The image's entry point, bundled by rolldown into one CommonJS file, dist/pingpong.cjs
 * (`npm run build`). `ponger` and `pinger` run from that file: no ES module loader and no module
 * graph to resolve, which keeps every pair's pods about 4 MiB lighter each (`npm run bench --
 * workloads`). Every other command loads the full CLI, dist/cli.js, as `node dist/cli.js` would.
 */
import { exitOnError } from "./lib/exit.ts";
import { isWorkloadCommand, runWorkload, workloadUsage } from "./workloads/command.ts";

import path from "node:path";
import { pathToFileURL } from "node:url";

const [command, ...rest] = process.argv.slice(2);
if (isWorkloadCommand(command)) {
  runWorkload(command, rest).catch((error: unknown) => exitOnError(error, workloadUsage(command)));
} else {
  // Next to this file: dist/cli.js, or cli.ts when run from the sources.
  const script = process.argv[1] ?? "";
  const cli = path.join(path.dirname(script), script.endsWith(".ts") ? "cli.ts" : "cli.js");
  import(pathToFileURL(cli).href).catch((error: unknown) => exitOnError(error, ""));
}
