/**
 * The Helm chart on the real node: helm install runs the operator and a pair becomes Ready with live
 * pings; helm upgrade changes the operator's settings and adds the ServiceMonitor, PodMonitor, alerts and
 * dashboard (on the Prometheus Operator's CRDs), and the pair stays Ready; helm uninstall removes
 * the operator and leaves the CRD and the pairs, as Helm does with crds/.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import type { V1Deployment } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ControlPlane } from "../controlplane/control-plane.ts";
import {
  applyCrds,
  eventually,
  NodeTestLock,
  startTestControlPlane,
  testNamespace,
} from "../controlplane/testing.ts";
import { projectRoot } from "../lib/repo.ts";
import type { PingPongPair } from "../operator/api/types.ts";
import { runStatus } from "../operator/commands/run.ts";
import { commandOutput } from "../operator/commands/testing.ts";
import { toolPath } from "./tools.ts";

const run = promisify(execFile);
const root = projectRoot();
let helmBinary: string;
const release = "pingpong-operator";
const system = "pingpong-system";

let lock: NodeTestLock;
let plane: ControlPlane;
let namespace: string;

const kubectl = (...args: string[]) => plane.kubectl(...args);
const helm = async (...args: string[]) =>
  (await run(helmBinary, [...args, "--kubeconfig", plane.kubeconfigPath], { maxBuffer: 16 * 1024 * 1024 }))
    .stdout;

/** The chart's monitors, rules and dashboard ConfigMap in the operator's namespace, sorted. */
async function monitoringObjects(): Promise<string[]> {
  const names = await kubectl(
    "-n",
    system,
    "get",
    "servicemonitors,podmonitors,prometheusrules,configmaps",
    "-l",
    "app.kubernetes.io/part-of=pingpong-operator",
    "-o",
    "name",
  );
  return names
    .split("\n")
    .filter((n) => n !== "")
    .sort();
}

async function readyPair(name: string): Promise<PingPongPair> {
  return eventually(
    `${name} Ready with live pings`,
    async () => {
      const pair = JSON.parse(
        await kubectl("-n", namespace, "get", "ppp", name, "-o", "json"),
      ) as PingPongPair;
      const ready = pair.status?.conditions?.find((c) => c.type === "Ready");
      return ready?.status === "True" ? pair : undefined;
    },
    240_000,
  );
}

beforeAll(async () => {
  helmBinary = await toolPath("helm");
  lock = await NodeTestLock.acquire();
  plane = await startTestControlPlane({ node: true, startTimeoutMs: 180_000 });
  namespace = testNamespace("helm");
  await kubectl("create", "namespace", namespace);
  await kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted");
}, 10 * 60_000);

afterAll(async () => {
  await (plane as ControlPlane | undefined)?.stop();
  await (lock as NodeTestLock | undefined)?.release();
}, 120_000);

describe("the Helm chart on the node", () => {
  it(
    "installs the operator, and a pair becomes Ready with live pings",
    async () => {
      const installed = await helm(
        "install",
        release,
        join(root, "charts", "pingpong-operator"),
        "--namespace",
        system,
        "--create-namespace",
        "--set",
        "healthInterval=2s",
        "--wait",
        "--timeout",
        "3m",
      );
      expect(installed).toContain("STATUS: deployed");
      expect(installed).toContain("kubectl pingpong status demo");
      await kubectl("-n", namespace, "apply", "-f", join(root, "examples", "pingpongpair.yaml"));
      const pair = await readyPair("demo");
      expect(pair.status?.ping?.successRatio).toBeGreaterThanOrEqual(0.95);
      // `pingpong status` reads each pod's /status through the API server's pod proxy.
      const shown = await commandOutput(runStatus, [
        "demo",
        "-n",
        namespace,
        "--kubeconfig",
        plane.kubeconfigPath,
      ]);
      const podLines = shown.split("\n").filter((line) => /^ {2}demo-(ponger|pinger)-/.test(line));
      expect(podLines, shown).toHaveLength(2);
      for (const line of podLines) {
        expect(line).toMatch(/Running\s+ready\s+0 restarts\s+leaf [0-9a-f]{16} \(current\), trusts 1 CA$/);
      }
    },
    6 * 60_000,
  );

  it(
    "upgrades the operator's settings and turns on the Prometheus objects; the pair stays Ready",
    async () => {
      // The Prometheus Operator's CRDs, as a cluster running it has them (hack/prometheus/build.sh).
      await applyCrds(kubectl, join(await toolPath("prometheus"), "crds"));
      const upgraded = await helm(
        "upgrade",
        release,
        join(root, "charts", "pingpong-operator"),
        "--namespace",
        system,
        "--reuse-values",
        "--set",
        "logLevel=debug",
        "--set",
        "prometheus.serviceMonitor.enabled=true,prometheus.podMonitor.enabled=true",
        "--set",
        "prometheus.rules.enabled=true,grafana.dashboard.enabled=true",
        "--wait",
        "--timeout",
        "3m",
      );
      expect(upgraded).toContain("REVISION: 2");
      const deployment = JSON.parse(
        await kubectl("-n", system, "get", "deployment", release, "-o", "json"),
      ) as V1Deployment;
      expect(deployment.spec?.template.spec?.containers[0]?.env).toContainEqual({
        name: "LOG_LEVEL",
        value: "debug",
      });
      expect(await monitoringObjects()).toEqual([
        "configmap/pingpong-grafana-dashboard",
        "podmonitor.monitoring.coreos.com/pingpong-pairs",
        "prometheusrule.monitoring.coreos.com/pingpong-operator",
        "servicemonitor.monitoring.coreos.com/pingpong-operator",
      ]);
      await readyPair("demo");
    },
    6 * 60_000,
  );

  it(
    "uninstalls the operator and keeps the CRD and the pairs",
    async () => {
      await helm("uninstall", release, "--namespace", system, "--wait", "--timeout", "2m");
      await eventually("the operator's pods gone", async () =>
        (await kubectl("-n", system, "get", "pods", "-o", "name")).trim() === "" ? true : undefined,
      );
      expect(await kubectl("get", "crd", "pingpongpairs.pingpong.dev", "-o", "name")).toContain(
        "pingpongpairs.pingpong.dev",
      );
      expect(await kubectl("-n", namespace, "get", "ppp", "-o", "name")).toContain("demo");
      expect(await monitoringObjects()).toEqual([]);
      expect(await kubectl("get", "clusterrole", "-o", "name")).not.toContain(
        "clusterrole.rbac.authorization.k8s.io/pingpong-operator\n",
      );
    },
    3 * 60_000,
  );
});
