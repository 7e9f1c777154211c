/** The `status` and `rotate` commands' flags, connection and output; the work is in status.ts and rotate.ts. */
import { parseArgs } from "node:util";
import { parseDuration } from "../../lib/duration.ts";
import { usageError } from "../../lib/exit.ts";
import { defaultConnection } from "../runtime/cluster-connection.ts";
import { KubeClient } from "../runtime/kube-client.ts";
import { rotate, RotationTimeoutError } from "./rotate.ts";
import { formatPairReport, readPairReport } from "./status.ts";

export const statusUsage = `Usage: pingpong status PAIR [-n NAMESPACE] [-o text|json] [--kubeconfig PATH]
       kubectl pingpong status PAIR ...

The pair's conditions and why, its certificates with expiry and renewal countdowns, its pods, ping
health and pongs per ponger pod, and its recent Events.
`;

export const rotateUsage = `Usage: pingpong rotate PAIR [--ca] [--no-wait] [--timeout 5m] [-n NAMESPACE] [--kubeconfig PATH]
       kubectl pingpong rotate PAIR ...

Asks for new leaf certificates (--ca: a new CA, rotated with a trust overlap) and waits until every
running pod has loaded them, printing what the operator reports.
`;

async function connect(kubeconfig: string | undefined, namespace: string | undefined) {
  const connection = await defaultConnection(kubeconfig);
  return { client: new KubeClient(connection), namespace: namespace ?? connection.namespace ?? "default" };
}

export async function runStatus(args: string[], out: NodeJS.WritableStream = process.stdout): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      namespace: { type: "string", short: "n" },
      output: { type: "string", short: "o", default: "text" },
      kubeconfig: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    out.write(statusUsage);
    return;
  }
  const [name] = positionals;
  if (name === undefined || positionals.length > 1) usageError(statusUsage);
  if (values.output !== "text" && values.output !== "json")
    usageError(`-o ${values.output}: use text or json`);
  const { client, namespace } = await connect(values.kubeconfig, values.namespace);
  try {
    const report = await readPairReport(client, namespace, name);
    out.write(
      values.output === "json"
        ? `${JSON.stringify(report, null, 2)}\n`
        : formatPairReport(report, new Date()),
    );
  } finally {
    await client.close();
  }
}

export async function runRotate(args: string[], out: NodeJS.WritableStream = process.stdout): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      namespace: { type: "string", short: "n" },
      ca: { type: "boolean", default: false },
      "no-wait": { type: "boolean", default: false },
      timeout: { type: "string", default: "5m" },
      kubeconfig: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    out.write(rotateUsage);
    return;
  }
  const [name] = positionals;
  if (name === undefined || positionals.length > 1) usageError(rotateUsage);
  let timeoutMs: number;
  try {
    timeoutMs = parseDuration(values.timeout);
  } catch (error) {
    usageError(`--timeout ${values.timeout}: ${(error as Error).message}`);
  }
  const { client, namespace } = await connect(values.kubeconfig, values.namespace);
  const started = Date.now();
  try {
    await rotate(client, {
      namespace,
      name,
      ca: values.ca,
      wait: !values["no-wait"],
      timeoutMs,
      progress: (line) => out.write(`${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s  ${line}\n`),
    });
    if (!values["no-wait"])
      out.write(`Done: every running pod of ${namespace}/${name} has the new certificates.\n`);
  } catch (error) {
    if (!(error instanceof RotationTimeoutError)) throw error;
    out.write(`pingpong: ${error.message}\n`);
    process.exitCode = 1;
  } finally {
    await client.close();
  }
}
