/**
 * The image's entry point, bundled by rolldown into CommonJS (`npm run build`): dist/pingpong.cjs,
 * with the ponger's and the pinger's modules in chunks of their own. `ponger` and `pinger` run from
 * it: no ES module loader and no module graph to resolve, and each loads only its own libraries (the
 * ponger no HTTP client, the pinger no TLS server), which keeps a ponger pod about 9 MiB lighter
 * (`npm run bench -- workloads`). Every other command loads the full CLI, dist/cli.js, as
 * `node dist/cli.js` would.
 */
import path from "node:path";
import { pathToFileURL } from "node:url";
import { exitOnError } from "./lib/exit.ts";
import { isWorkloadCommand, runWorkload, workloadUsage } from "./workloads/command.ts";

const [command, ...rest] = process.argv.slice(2);
if (isWorkloadCommand(command)) {
  runWorkload(command, rest).catch((error: unknown) => exitOnError(error, workloadUsage(command)));
} else {
  // Next to this file: dist/cli.js, or cli.ts when run from the sources.
  const script = process.argv[1] ?? "";
  const cli = path.join(path.dirname(script), script.endsWith(".ts") ? "cli.ts" : "cli.js");
  import(pathToFileURL(cli).href).catch((error: unknown) => exitOnError(error, ""));
}
