/**
 * `pingpong demo`: a local cluster with its node, the operator installed from config/default (a pod
 * of the project's image, as its ServiceAccount, in its restricted namespace), and
 * examples/pingpongpair.yaml applied; the pair's state is printed as `kubectl get pingpongpairs`
 * shows it until it is Ready with live pings, then what to try next. Where the node cannot start it
 * says why and runs the API-only demo instead: the operator in this process, pods Pending.
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { nodeImagesDir } from "./binaries.ts";
import { ControlPlane } from "./control-plane.ts";
import { NodeUnavailableError } from "./node-preflight.ts";
import { errorMessage, type Logger } from "../lib/logger.ts";
import { projectRoot } from "../lib/repo.ts";
import type { PingPongPair } from "../operator/api/types.ts";
import { installConfigDefault, installOperator, objectsIn, operatorServiceAccount } from "./install.ts";
import { startOperator } from "../operator/operator.ts";
import { connectionFromKubeconfig } from "../operator/runtime/cluster-connection.ts";
import { KubeApiError, KubeClient } from "../operator/runtime/kube-client.ts";
import { resources } from "../operator/runtime/resources.ts";
import { alignColumns } from "../lib/text-table.ts";

const operatorNamespace = "pingpong-system";
const say = (text: string) => process.stdout.write(text);

function row(pair: PingPongPair): string[] {
  const status = pair.status;
  const ready = status?.conditions?.find((c) => c.type === "Ready");
  return [
    pair.metadata?.name ?? "",
    ready?.status ?? "",
    status?.pinger?.ready ?? "",
    status?.ponger?.ready ?? "",
    status?.ping?.success ?? "",
    status?.ping?.latencyP99 ?? "",
    status?.certificates?.expires ?? "",
    ready?.reason ?? "",
  ];
}

function table(rows: string[][]): string {
  const header = ["NAME", "READY", "PINGERS", "PONGERS", "SUCCESS", "P99", "CERT-EXPIRES", "REASON"];
  return alignColumns([header, ...rows], { gap: 3 });
}

async function applyExample(admin: KubeClient): Promise<string> {
  const example = join(projectRoot(), "examples", "pingpongpair.yaml");
  for (const object of objectsIn(example)) {
    if (object.metadata) object.metadata.namespace = "default";
    await admin.create(object).catch((error: unknown) => {
      if (!(error instanceof KubeApiError && error.status === 409)) throw error;
    });
  }
  return example;
}

/** Prints the pairs whenever their row changes; calls `onReady` once when every pair is Ready. */
function reportPairs(admin: KubeClient, onReady: () => void): () => void {
  let last = "";
  let readySaid = false;
  const timer = setInterval(() => {
    void admin.list<PingPongPair>(resources.pingPongPair, "default").then(
      ({ items }) => {
        const text = table(items.map(row));
        if (text !== last) say(`${text}\n\n`);
        last = text;
        const ready = items.every((p) =>
          p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
        );
        if (items.length > 0 && ready && !readySaid) {
          readySaid = true;
          onReady();
        }
      },
      () => undefined,
    );
  }, 2_000);
  return () => clearInterval(timer);
}

export async function runOperatorDemo(logger: Logger, dir: string): Promise<{ stop(): Promise<void> }> {
  const clusterDir = resolve(dir);
  const started = Date.now();
  const progress = (line: string) =>
    say(`${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s  ${line}\n`);
  say("Starting a local Kubernetes cluster with its node...\n");
  try {
    const plane = await ControlPlane.start({ dir: clusterDir, node: true, progress });
    return await demoOnNode(plane, progress);
  } catch (error) {
    if (!(error instanceof NodeUnavailableError)) throw error;
    say(
      `\n${error.message}\n\nFalling back to the API-only demo: the operator runs here, pods stay Pending.\n\n`,
    );
    return demoWithoutNode(logger, clusterDir);
  }
}

async function demoOnNode(
  plane: ControlPlane,
  progress: (line: string) => void,
): Promise<{ stop(): Promise<void> }> {
  try {
    if (!existsSync(join(nodeImagesDir(), "pingpong-operator.tar")))
      throw new Error("the project's image is not built: run `make image` (or `make demo`, which builds it)");
    progress("Installing config/default: the CRD, RBAC, and the operator as a pod");
    await installConfigDefault((...args) => plane.kubectl(...args));
    progress("The operator's pod is Ready");
    const admin = new KubeClient(await connectionFromKubeconfig(plane.adminKubeconfig()));
    const example = await applyExample(admin);
    progress(`Applied ${example} to namespace default`);
    say(
      `\nIn another terminal:\n  export KUBECONFIG=${plane.kubeconfigPath}\n  kubectl get pingpongpairs --watch\n\n`,
    );
    const stopReport = reportPairs(admin, () => {
      progress("demo is Ready, with live pings");
      say(
        "\nTry next (with the KUBECONFIG above):\n" +
          "  kubectl scale ppp demo --replicas=3                                   # three pongers share the pings\n" +
          `  kubectl patch ppp demo --type merge -p '{"spec":{"tls":{"rotate":"1"}}}'    # new leaves, no failed ping\n` +
          `  kubectl patch ppp demo --type merge -p '{"spec":{"tls":{"rotateCA":"1"}}}'  # a new CA, step by step\n` +
          "  kubectl describe ppp demo                                             # conditions and events\n" +
          "  kubectl logs deploy/demo-pinger                                       # Sent ping / Got pong\n" +
          "  kubectl -n pingpong-system logs deploy/pingpong-operator\n" +
          "Ctrl-C stops the cluster and removes it from this machine.\n\n",
      );
    });
    return {
      stop: async () => {
        stopReport();
        await plane.stop();
      },
    };
  } catch (error) {
    await plane.stop();
    throw new Error(`the demo could not start: ${errorMessage(error)}`, { cause: error });
  }
}

async function demoWithoutNode(logger: Logger, clusterDir: string): Promise<{ stop(): Promise<void> }> {
  const plane = await ControlPlane.start({ dir: clusterDir });
  try {
    const admin = new KubeClient(await connectionFromKubeconfig(plane.adminKubeconfig()));
    await installOperator(admin, operatorNamespace);
    const operator = await startOperator({
      connection: await connectionFromKubeconfig(
        await plane.serviceAccountKubeconfig(operatorNamespace, operatorServiceAccount),
      ),
      logger,
      namespaces: [],
      workers: 4,
      image: process.env.PINGPONG_IMAGE ?? "pingpong-operator:dev",
      metricsAddress: "127.0.0.1",
      metricsPort: 0,
      leaderElection: true,
      namespace: operatorNamespace,
      rotationStepMs: 120_000,
    });
    const example = await applyExample(admin);
    say(
      `The operator is running as ServiceAccount ${operatorNamespace}/${operatorServiceAccount} (config/rbac), ` +
        `metrics at ${operator.probes.url}/metrics.\nApplied ${example} to namespace default.\n\n` +
        `In another terminal:\n  export KUBECONFIG=${plane.kubeconfigPath}\n` +
        `  ${plane.binaries.kubectl} get pingpongpairs,deployments,secrets\n\n` +
        "Without a node, pods stay Pending and Ready stays False (WorkloadsUnavailable).\n" +
        "Ctrl-C stops everything and removes the cluster's data.\n\n",
    );
    const stopReport = reportPairs(admin, () => undefined);
    return {
      stop: async () => {
        stopReport();
        await operator.stop();
        await plane.stop();
      },
    };
  } catch (error) {
    await plane.stop();
    throw error;
  }
}
