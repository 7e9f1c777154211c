/** The `status`, `rotate` and `drill` commands' flags, connection and output; the work is in status.ts, rotate.ts and drill.ts. */
import { parseArgs } from "node:util";
import { parseDuration } from "../../lib/duration.ts";
import type { Drill } from "../api/types.ts";
import { usageError } from "../../lib/exit.ts";
import { defaultConnection } from "../runtime/cluster-connection.ts";
import { KubeClient } from "../runtime/kube-client.ts";
import { drill, DrillNotDetectedError, parseRatio } from "./drill.ts";
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

export const drillUsage = `Usage: pingpong drill PAIR [faults] [--for 5m] [--no-follow] [-n NAMESPACE] [--kubeconfig PATH]
       pingpong drill PAIR --stop
       kubectl pingpong drill PAIR ...

A fire drill: the ponger injects faults into the pair's own pings until --for has passed, and the
command follows the pair, printing when the fault started, when PingHealthy turned False (time to
detect), when the drill ended and when PingHealthy was True again (time to recover). It exits 1 when
the fault was never detected. Status, Events and alerts (drill="true") say a drill is running.

Faults (at least one):
  --abort SHARE            answer SHARE of pings (e.g. 50%) with an error status instead of a pong
  --abort-status CODE      the status of an aborted ping (default 503)
  --delay DURATION         hold pings this long (e.g. 3s) before answering
  --delay-share SHARE      share of pings to delay (default 100%)
  --refuse-client-certs    refuse the pinger's client certificate in the TLS handshake (mutual TLS)
Options:
  --for DURATION           how long the drill lasts (default 5m, at most 24h)
  --recover-timeout DUR    how long to wait for recovery after the drill (default 5m)
  --no-follow              set the drill and return
  --stop                   end the drill now (removes spec.drill)
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

function durationFlag(flag: string, text: string): number {
  try {
    return parseDuration(text);
  } catch (error) {
    usageError(`${flag} ${text}: ${(error as Error).message}`);
  }
}

function ratioFlag(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  try {
    return parseRatio(text, flag);
  } catch (error) {
    usageError((error as Error).message);
  }
}

function drillFlags(args: string[]) {
  return parseArgs({
    args,
    options: {
      namespace: { type: "string", short: "n" },
      abort: { type: "string" },
      "abort-status": { type: "string", default: "503" },
      delay: { type: "string" },
      "delay-share": { type: "string", default: "100%" },
      "refuse-client-certs": { type: "boolean", default: false },
      for: { type: "string", default: "5m" },
      "recover-timeout": { type: "string", default: "5m" },
      "no-follow": { type: "boolean", default: false },
      stop: { type: "boolean", default: false },
      kubeconfig: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    allowPositionals: true,
    strict: true,
  });
}

/** spec.drill from the flags; a usage error saying what to write when they ask for nothing or too much. */
function drillFromFlags(values: ReturnType<typeof drillFlags>["values"]): Drill {
  const abortRatio = ratioFlag("--abort", values.abort);
  const abortStatus = Number(values["abort-status"]);
  if (!Number.isInteger(abortStatus) || abortStatus < 400 || abortStatus > 599) {
    usageError(`--abort-status ${values["abort-status"]}: write an HTTP error status from 400 to 599`);
  }
  const delay = values.delay;
  if (delay !== undefined) durationFlag("--delay", delay);
  const refuse = values["refuse-client-certs"];
  if (abortRatio === undefined && delay === undefined && !refuse) {
    usageError(
      `pingpong drill: say what to inject: --abort 50%, --delay 3s or --refuse-client-certs\n\n${drillUsage}`,
    );
  }
  const forMs = durationFlag("--for", values.for);
  if (forMs <= 0 || forMs > 24 * 3_600_000)
    usageError(`--for ${values.for}: a drill lasts more than 0s and at most 24h`);
  return {
    ...(abortRatio === undefined ? {} : { abortRatio, abortStatus }),
    ...(delay === undefined
      ? {}
      : { delay, delayRatio: ratioFlag("--delay-share", values["delay-share"]) ?? 1 }),
    ...(refuse ? { refuseClientCertificates: true } : {}),
    until: new Date(Date.now() + forMs).toISOString(),
  };
}

export async function runDrill(args: string[], out: NodeJS.WritableStream = process.stdout): Promise<void> {
  const { values, positionals } = drillFlags(args);
  if (values.help) {
    out.write(drillUsage);
    return;
  }
  const [name] = positionals;
  if (name === undefined || positionals.length > 1) usageError(drillUsage);
  const spec = values.stop ? undefined : drillFromFlags(values);
  const recoverTimeoutMs = durationFlag("--recover-timeout", values["recover-timeout"]);
  const { client, namespace } = await connect(values.kubeconfig, values.namespace);
  const started = Date.now();
  try {
    const timeline = await drill(client, {
      namespace,
      name,
      ...(spec ? { drill: spec } : {}),
      follow: !values["no-follow"],
      recoverTimeoutMs,
      progress: (line) => out.write(`${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s  ${line}\n`),
    });
    if (timeline?.detectMs !== undefined && timeline.recoverMs !== undefined) {
      const seconds = (ms: number) => (ms / 1000).toFixed(1);
      out.write(
        `Done: detected in ${seconds(timeline.detectMs)} s, recovered in ${seconds(timeline.recoverMs)} s.\n`,
      );
    }
  } catch (error) {
    if (!(error instanceof DrillNotDetectedError)) throw error;
    out.write(`pingpong: ${error.message}\n`);
    process.exitCode = 1;
  } finally {
    await client.close();
  }
}
