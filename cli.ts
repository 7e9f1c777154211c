#!/usr/bin/env node
/**
 * `pingpong`: one CLI for everything the image runs and everything a developer runs locally. Each
 * command loads only its own modules: a pinger does not load the operator, and the operator does not
 * load the control plane.
 */
import { exitOnError, usageError } from "./lib/exit.ts";
import { exitOnSignal } from "./lib/shutdown.ts";

import path from "node:path";
import { parseArgs } from "node:util";

const usage = `Usage: pingpong <command> [options]

Commands:
  operator [flags]         the PingPongPair operator (--help for flags)
  ponger [--config FILE]   HTTPS server answering GET /ping with "pong" (TLS, mutual TLS or HTTP)
  pinger [--config FILE]   pings a ponger every interval and reports health on its metrics port
  cluster up [--dir DIR] [--no-node]
                           a local single-node Kubernetes cluster (default DIR: ./.cluster); with
                           --no-node, the API-only control plane on 127.0.0.1 (pods stay Pending)
  status PAIR [-n NS] [-o json]
                           a PingPongPair's conditions, certificates (expiry and renewal countdowns),
                           pods, ping health and recent Events
  rotate PAIR [--ca] [--no-wait]
                           new leaf certificates (or a new CA), waiting until every pod has loaded them
  drill PAIR --abort 50% [--for 5m] | --delay 3s | --refuse-client-certs | --stop
                           a fire drill: faults injected into the pair's pings, followed with its time
                           to detect and to recover
                           (status, rotate and drill also as \`kubectl pingpong ...\` with
                           kubectl-pingpong on PATH)
  demo [--workloads]       a local cluster with its node, the operator as a pod and an example
                           pair pinging (API-only where the node cannot start); with --workloads,
                           a ponger and a pinger on loopback over mutual TLS instead

Every ponger and pinger config field can also be set by environment, e.g. service.tlsCertificate as
PINGPONG_SERVICE_TLS_CERTIFICATE. Every command answers --help.
`;

const clusterUsage = `Usage: pingpong cluster up [--dir DIR] [--no-node]

A local single-node Kubernetes cluster in DIR (default ./.cluster), as root: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, containerd, the kubelet, kube-proxy, kube-router's
NetworkPolicy firewall and CoreDNS. With --no-node, the API-only control plane on 127.0.0.1 (pods
stay Pending). Ctrl-C stops it and removes everything it made on this machine.
`;

const demoUsage = `Usage: pingpong demo [--dir DIR] [--workloads]

A local cluster with its node (in DIR, default ./.cluster), the operator as a pod and an example
pair, followed until it is Ready with live pings (API-only where the node cannot start). With
--workloads, a ponger and a pinger on loopback over mutual TLS instead, no cluster.
`;

const wantsHelp = (args: readonly string[]) => args.includes("--help") || args.includes("-h");

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case "ponger":
    case "pinger": {
      const { runWorkload } = await import("./workloads/command.ts");
      await runWorkload(command, rest);
      return;
    }
    case "operator": {
      const { operatorOptions, operatorUsage } = await import("./operator/command.ts");
      if (wantsHelp(rest)) {
        process.stdout.write(operatorUsage);
        return;
      }
      const { startOperator } = await import("./operator/operator.ts");
      const { createLogger } = await import("./lib/logger.ts");
      const logger = createLogger("operator");
      const options = await operatorOptions(rest, process.env, logger);
      const operator = await startOperator({
        ...options,
        // Leadership lost: exit, so the Deployment restarts us as a standby and the new leader alone writes.
        onLostLeadership: () => process.exit(1),
      });
      exitOnSignal(logger, () => operator.stop());
      return;
    }
    case "cluster": {
      if (wantsHelp(rest)) {
        process.stdout.write(clusterUsage);
        return;
      }
      const { positionals, values } = parseArgs({
        args: rest,
        options: {
          dir: { type: "string", default: ".cluster" },
          "no-node": { type: "boolean", default: false },
        },
        allowPositionals: true,
        strict: true,
      });
      if (positionals[0] !== "up" || positionals.length > 1) usageError(clusterUsage);
      const { pinnedKubernetesVersion } = await import("./controlplane/binaries.ts");
      const { ControlPlane } = await import("./controlplane/control-plane.ts");
      const { createLogger } = await import("./lib/logger.ts");
      const logger = createLogger("cluster");
      const dir = path.resolve(values.dir);
      const withNode = !values["no-node"];
      const started = Date.now();
      const seconds = () => ((Date.now() - started) / 1000).toFixed(1);
      const plane = await ControlPlane.start({
        dir,
        node: withNode,
        progress: (line) => process.stdout.write(`${seconds().padStart(5)}s  ${line}\n`),
      });
      const what = withNode
        ? `Kubernetes ${pinnedKubernetesVersion()} cluster ready in ${seconds()}s at ${plane.server}\n` +
          "(etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd, kubelet, kube-proxy,\n" +
          " kube-router's NetworkPolicy firewall, CoreDNS; node pingpong-node: pods reach pods, Services and\n" +
          " the API server as NetworkPolicies allow, nothing outside this machine)\n"
        : `Kubernetes ${pinnedKubernetesVersion()} control plane ready in ${seconds()}s at ${plane.server}\n` +
          "(etcd, kube-apiserver with RBAC, kube-controller-manager; no node: Pods stay Pending)\n";
      process.stdout.write(
        `${what}Logs in ${dir}/logs. Ctrl-C stops it and removes it from this machine.\n\n` +
          `export KUBECONFIG=${plane.kubeconfigPath}\n`,
      );
      exitOnSignal(logger, () => plane.stop(), 60_000);
      return;
    }
    case "demo": {
      if (wantsHelp(rest)) {
        process.stdout.write(demoUsage);
        return;
      }
      const { values } = parseArgs({
        args: rest,
        options: {
          workloads: { type: "boolean", default: false },
          dir: { type: "string", default: ".cluster" },
        },
        strict: true,
      });
      // Quiet logs: the demo prints what matters itself.
      const { createLogger } = await import("./lib/logger.ts");
      const logger = createLogger("demo");
      logger.level = process.env.LOG_LEVEL ?? "warn";
      const demo = values.workloads
        ? await (await import("./workloads/local-demo.ts")).runLocalDemo(logger)
        : await (await import("./controlplane/demo.ts")).runOperatorDemo(logger, values.dir);
      exitOnSignal(logger, () => demo.stop(), 60_000);
      return;
    }
    case "status": {
      const { runStatus } = await import("./operator/commands/run.ts");
      await runStatus(rest);
      return;
    }
    case "rotate": {
      const { runRotate } = await import("./operator/commands/run.ts");
      await runRotate(rest);
      return;
    }
    case "drill": {
      const { runDrill } = await import("./operator/commands/run.ts");
      await runDrill(rest);
      return;
    }
    case undefined:
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(usage);
      return;
    default:
      usageError(`unknown command "${command}"\n\n${usage}`);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => exitOnError(error, usage));
