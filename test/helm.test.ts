/**
 * The Helm chart against config/default: both install paths must give the operator the same RBAC,
 * security contexts, probes and resources, so they cannot drift. Rendered with a real Helm (built by
 * hack/helm/build.sh, `make helm`) and kubectl's kustomize.
 */
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import type {
  KubernetesObject,
  V1ClusterRole,
  V1Deployment,
  V1Role,
  V1Service,
} from "@kubernetes/client-node";
import { beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { findBinaries } from "../controlplane/binaries.ts";
import { projectRoot } from "../lib/repo.ts";
import { toolPath } from "./tools.ts";

const run = promisify(execFile);
const root = projectRoot();
const chart = join(root, "charts", "pingpong-operator");
let helm: string;

function objects(text: string): KubernetesObject[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as KubernetesObject | null)
    .filter((o): o is KubernetesObject => o !== null);
}

async function template(...set: string[]): Promise<KubernetesObject[]> {
  const { stdout } = await run(helm, [
    "template",
    "pingpong",
    chart,
    "--namespace",
    "pingpong-system",
    ...set.flatMap((s) => ["--set", s]),
  ]);
  return objects(stdout);
}

const find = (list: KubernetesObject[], kind: string, name?: string): KubernetesObject => {
  const found = list.find((o) => o.kind === kind && (name === undefined || o.metadata?.name === name));
  if (!found)
    throw new Error(
      `no ${kind} ${name ?? ""} in ${list.map((o) => `${o.kind}/${o.metadata?.name}`).join(", ")}`,
    );
  return found;
};

let fromHelm: KubernetesObject[];
let fromKustomize: KubernetesObject[];

beforeAll(async () => {
  helm = await toolPath("helm");
  fromHelm = await template();
  const { stdout } = await run(findBinaries().kubectl, ["kustomize", join(root, "config", "default")]);
  fromKustomize = objects(stdout);
}, 120_000);

describe("the Helm chart", () => {
  it("passes helm lint", async () => {
    const { stdout } = await run(helm, ["lint", chart]);
    expect(stdout).toContain("1 chart(s) linted, 0 chart(s) failed");
  });

  it("ships the CRD unchanged in its crds/ folder", async () => {
    expect(await readFile(join(chart, "crds", "pingpong.dev_pingpongpairs.yaml"), "utf8")).toBe(
      await readFile(join(root, "crds", "pingpong.dev_pingpongpairs.yaml"), "utf8"),
    );
  });

  it("grants exactly the RBAC config/default grants", () => {
    expect((find(fromHelm, "ClusterRole") as V1ClusterRole).rules).toEqual(
      (find(fromKustomize, "ClusterRole") as V1ClusterRole).rules,
    );
    expect((find(fromHelm, "Role") as V1Role).rules).toEqual((find(fromKustomize, "Role") as V1Role).rules);
    for (const kind of ["ClusterRoleBinding", "RoleBinding"]) {
      const [helmBinding, kustomizeBinding] = [find(fromHelm, kind), find(fromKustomize, kind)] as {
        roleRef: unknown;
        subjects: unknown;
      }[];
      expect(helmBinding?.roleRef).toEqual(kustomizeBinding?.roleRef);
      expect(helmBinding?.subjects).toEqual(kustomizeBinding?.subjects);
    }
  });

  it("runs the operator as config/default does: security contexts, probes, ports, resources, env", () => {
    const helmPod = (find(fromHelm, "Deployment") as V1Deployment).spec?.template.spec;
    const kustomizePod = (find(fromKustomize, "Deployment") as V1Deployment).spec?.template.spec;
    expect(helmPod?.securityContext).toEqual(kustomizePod?.securityContext);
    expect(helmPod?.serviceAccountName).toBe(kustomizePod?.serviceAccountName);
    const [h, k] = [helmPod?.containers[0], kustomizePod?.containers[0]];
    for (const field of [
      "securityContext",
      "livenessProbe",
      "readinessProbe",
      "startupProbe",
      "ports",
      "resources",
      "image",
    ] as const) {
      expect(h?.[field], field).toEqual(k?.[field]);
    }
    expect(h?.env).toEqual(k?.env);
    expect(h?.args?.[0]).toBe("operator");
    const [helmService, kustomizeService] = [
      find(fromHelm, "Service") as V1Service,
      find(fromKustomize, "Service") as V1Service,
    ];
    expect(helmService.spec?.ports).toEqual(kustomizeService.spec?.ports);
    expect(helmService.spec?.selector).toEqual(kustomizeService.spec?.selector);
  });

  it("turns its values into the operator's flags", async () => {
    const custom = await template(
      "watchNamespaces={team-a,team-b}",
      "leaderElection.enabled=false",
      "logLevel=debug",
      "image.repository=registry.example/pingpong-operator",
      "image.tag=1.2.3",
    );
    const container = (find(custom, "Deployment") as V1Deployment).spec?.template.spec?.containers[0];
    expect(container?.args).toEqual(
      expect.arrayContaining(["--namespaces=team-a,team-b", "--leader-elect=false"]),
    );
    expect(container?.image).toBe("registry.example/pingpong-operator:1.2.3");
    expect(container?.env).toEqual(
      expect.arrayContaining([
        { name: "LOG_LEVEL", value: "debug" },
        { name: "PINGPONG_IMAGE", value: "registry.example/pingpong-operator:1.2.3" },
      ]),
    );
    // No Lease without leader election, so no Role for it.
    expect(custom.some((o) => o.kind === "Role")).toBe(false);
  });

  it("renders config/prometheus's monitors, alerts and dashboard when switched on, and nothing of them by default", async () => {
    const monitoring = ["ServiceMonitor", "PodMonitor", "PrometheusRule"];
    expect(fromHelm.filter((o) => monitoring.includes(o.kind ?? "") || o.kind === "ConfigMap")).toEqual([]);
    const switchedOn = await template(
      "prometheus.serviceMonitor.enabled=true",
      "prometheus.podMonitor.enabled=true",
      "prometheus.rules.enabled=true",
      "prometheus.rules.labels.release=kube-prometheus-stack",
      "grafana.dashboard.enabled=true",
    );
    const { stdout } = await run(findBinaries().kubectl, ["kustomize", join(root, "config", "prometheus")]);
    const kustomized = objects(stdout);
    type WithBody = KubernetesObject & { spec?: unknown; data?: unknown };
    for (const kind of [...monitoring, "ConfigMap"]) {
      const [helmObject, kustomizeObject] = [find(switchedOn, kind), find(kustomized, kind)] as WithBody[];
      expect(helmObject?.metadata?.name, kind).toBe(kustomizeObject?.metadata?.name);
      expect(helmObject?.metadata?.namespace, kind).toBe("pingpong-system");
      expect(helmObject?.spec, kind).toEqual(kustomizeObject?.spec);
      expect(helmObject?.data, kind).toEqual(kustomizeObject?.data);
    }
    expect(find(switchedOn, "PrometheusRule").metadata?.labels?.release).toBe("kube-prometheus-stack");
    expect(find(switchedOn, "ConfigMap").metadata?.labels?.grafana_dashboard).toBe("1");
    // The monitor selects the chart's own metrics Service.
    const service = find(switchedOn, "Service") as V1Service;
    const monitor = find(switchedOn, "ServiceMonitor") as KubernetesObject & {
      spec: { selector: { matchLabels: Record<string, string> } };
    };
    expect(service.metadata?.labels).toEqual(expect.objectContaining(monitor.spec.selector.matchLabels));
  });

  it("ships config/prometheus's alerts and dashboard unchanged in its files/ folder", async () => {
    for (const file of ["prometheus-rule.yaml", "grafana-dashboard.json"]) {
      expect(await readFile(join(chart, "files", file), "utf8"), file).toBe(
        await readFile(join(root, "config", "prometheus", file), "utf8"),
      );
    }
  });
});
