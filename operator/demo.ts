/**
 * `pingpong demo`: a local control plane, the operator running as its own ServiceAccount with the
 * shipped RBAC, and examples/pingpongpair.yaml applied, with the pair's state printed as
 * `kubectl get pingpongpairs` would. There is no kubelet here, so pods stay Pending: the demo shows
 * certificates, children and status; `--workloads` runs a ponger and pinger locally instead.
 */
import { join, resolve } from "node:path";
import { ControlPlane } from "../controlplane/control-plane.ts";
import type { Logger } from "../lib/logger.ts";
import { projectRoot } from "../lib/repo.ts";
import type { PingPongPair } from "./api/types.ts";
import { installOperator, objectsIn, operatorServiceAccount } from "./install.ts";
import { startOperator } from "./operator.ts";
import { connectionFromKubeconfig } from "./runtime/cluster-connection.ts";
import { KubeApiError, KubeClient } from "./runtime/kube-client.ts";
import { resources } from "./runtime/resources.ts";

const operatorNamespace = "pingpong-system";

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
  const all = [["NAME", "READY", "PINGERS", "PONGERS", "SUCCESS", "P99", "CERT-EXPIRES", "REASON"], ...rows];
  const widths = all[0]?.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length))) ?? [];
  return all
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd((widths[i] ?? 0) + 3))
        .join("")
        .trimEnd(),
    )
    .join("\n");
}

export async function runOperatorDemo(logger: Logger, dir: string): Promise<{ stop(): Promise<void> }> {
  const clusterDir = resolve(dir);
  process.stdout.write("Starting a local control plane (etcd, kube-apiserver, kube-controller-manager)...\n");
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
    const example = join(projectRoot(), "examples", "pingpongpair.yaml");
    for (const object of objectsIn(example)) {
      if (object.metadata) object.metadata.namespace = "default";
      await admin.create(object).catch((error: unknown) => {
        if (!(error instanceof KubeApiError && error.status === 409)) throw error;
      });
    }
    process.stdout.write(
      `\nThe operator is running as ServiceAccount ${operatorNamespace}/${operatorServiceAccount} (config/rbac), ` +
        `metrics at ${operator.probes.url}/metrics.\nApplied ${example} to namespace default.\n\n` +
        `In another terminal:\n  export KUBECONFIG=${plane.kubeconfigPath}\n` +
        `  ${plane.binaries.kubectl} get pingpongpairs,deployments,secrets\n` +
        `  ${plane.binaries.kubectl} patch ppp demo --type merge -p '{"spec":{"tls":{"rotate":"now"}}}'\n\n` +
        "There is no kubelet here, so pods stay Pending and Ready stays False (WorkloadsUnavailable).\n" +
        "Ctrl-C stops everything and removes the cluster's data.\n\n",
    );
    let last = "";
    const report = setInterval(() => {
      void admin.list<PingPongPair>(resources.pingPongPair, "default").then(
        ({ items }) => {
          const text = table(items.map(row));
          if (text !== last) process.stdout.write(`${text}\n\n`);
          last = text;
        },
        () => undefined,
      );
    }, 2_000);
    return {
      stop: async () => {
        clearInterval(report);
        await operator.stop();
        await plane.stop();
      },
    };
  } catch (error) {
    await plane.stop();
    throw error;
  }
}
