/**
 * `pingpong operator`: flags and environment to OperatorOptions. Runs in a cluster with no flags at
 * all, and out of one with KUBECONFIG for development (the Lease then lives in POD_NAMESPACE, else
 * the kubeconfig's namespace).
 */
import { parseArgs } from "node:util";
import { parseDuration } from "../lib/duration.ts";
import type { Logger } from "../lib/logger.ts";
import type { OperatorOptions } from "./operator.ts";
import { defaultConnection } from "./runtime/cluster-connection.ts";
import { usageError } from "../lib/exit.ts";

export const operatorUsage = `Usage: pingpong operator [flags]

  --kubeconfig PATH          kubeconfig to use (default: KUBECONFIG, ~/.kube/config, else in-cluster)
  --namespaces a,b           namespaces to watch (default: all; env WATCH_NAMESPACES)
  --workers N                pairs reconciled at once (default 4)
  --image IMAGE              image for the ponger and pinger when a pair does not set one
                             (default: env PINGPONG_IMAGE, else pingpong-operator:dev)
  --metrics-address ADDR     address of /metrics, /healthz, /readyz (default 0.0.0.0)
  --metrics-port PORT        (default 8080; 0 picks a free port)
  --leader-elect true|false  hold a Lease so only one replica writes (default true)
  --namespace NS             the operator's namespace, for the Lease and NetworkPolicies
                             (default: POD_NAMESPACE, else the kubeconfig's namespace, else default)
  --ca-rotation-step DUR     the least time each CA rotation step lasts (default 2m); a step
                             ends once every pod reports the new certificates loaded
  --health-interval DUR      how often each pair's pods' /status is read for ping health and
                             loaded certificates (default 10s)
`;

/** A bad flag: the CLI prints it with the usage and exits 2. */
function flagError(message: string): never {
  usageError(`${message}\n\n${operatorUsage}`);
}

// eslint-disable-next-line max-lines-per-function -- one line per command-line flag, in the order --help lists them
export async function operatorOptions(
  args: string[],
  env: NodeJS.ProcessEnv,
  logger: Logger,
): Promise<OperatorOptions> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      kubeconfig: { type: "string" },
      namespaces: { type: "string" },
      workers: { type: "string", default: "4" },
      image: { type: "string" },
      "metrics-address": { type: "string", default: "0.0.0.0" },
      "metrics-port": { type: "string", default: "8080" },
      "leader-elect": { type: "string", default: "true" },
      namespace: { type: "string" },
      "ca-rotation-step": { type: "string", default: "2m" },
      "health-interval": { type: "string", default: "10s" },
    },
  });
  const connection = await defaultConnection(values.kubeconfig, env);

  const workers = Number(values.workers);
  if (!Number.isInteger(workers) || workers < 1 || workers > 64)
    flagError(`--workers ${values.workers}: use a whole number from 1 to 64`);
  const port = Number(values["metrics-port"]);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    flagError(`--metrics-port ${values["metrics-port"]}: use 0 to 65535`);
  const leaderElect = values["leader-elect"];
  if (leaderElect !== "true" && leaderElect !== "false")
    flagError(`--leader-elect ${leaderElect}: use true or false`);
  let rotationStepMs: number;
  try {
    rotationStepMs = parseDuration(values["ca-rotation-step"]);
  } catch (error) {
    flagError(`--ca-rotation-step: ${(error as Error).message}`);
  }
  let healthIntervalMs: number;
  try {
    healthIntervalMs = parseDuration(values["health-interval"]);
  } catch (error) {
    flagError(`--health-interval: ${(error as Error).message}`);
  }
  if (healthIntervalMs < 1_000 || healthIntervalMs > 600_000)
    flagError(`--health-interval ${values["health-interval"]}: use 1s to 10m`);

  // In a pod, the connection's namespace is the pod's; out of one, the kubeconfig context's.
  const namespace = values.namespace ?? env.POD_NAMESPACE ?? connection.namespace ?? "default";
  const namespaces = (values.namespaces ?? env.WATCH_NAMESPACES ?? "")
    .split(",")
    .map((n) => n.trim())
    .filter(Boolean);

  return {
    connection,
    logger,
    namespaces,
    workers,
    image: values.image ?? env.PINGPONG_IMAGE ?? "pingpong-operator:dev",
    metricsAddress: values["metrics-address"],
    metricsPort: port,
    leaderElection: leaderElect === "true",
    namespace,
    rotationStepMs,
    healthIntervalMs,
  };
}
