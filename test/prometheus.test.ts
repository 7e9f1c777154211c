/**
 * config/prometheus, the way Prometheus and the Prometheus Operator will read it:
 * - the alerts pass `promtool check rules`, and `promtool test rules` makes each fire and stay silent;
 * - every series the alerts and the dashboard select names a metric the program behind its job really
 *   exports: the operator (against a real API server, with a pair) and a ponger and a pinger pinging
 *   each other on loopback, all scraped;
 * - the ServiceMonitor, PodMonitor, PrometheusRule and dashboard ConfigMap are accepted by a real API
 *   server holding the prometheus-operator CRDs, with strict field validation and nothing pruned.
 * The tools (promtool, a PromQL name lister and the CRDs) come from hack/prometheus/build.sh.
 */
import { execFile } from "node:child_process";
import { copyFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { KubernetesObject } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { applyCrds, eventually } from "../controlplane/testing.ts";
import { createLogger } from "../lib/logger.ts";
import { mintTestPki } from "../lib/pki/testing/fixtures.ts";
import { projectRoot } from "../lib/repo.ts";
import { objectsInYaml } from "../controlplane/install.ts";
import { OperatorEnvironment } from "../operator/testing/environment.ts";
import { type Pinger, startPinger } from "../workloads/pinger/pinger.ts";
import { type Ponger, startPonger } from "../workloads/ponger/ponger.ts";
import { KubeletVolume } from "../workloads/testing/kubelet-volume.ts";
import { toolPath } from "./tools.ts";

const run = promisify(execFile);
const root = projectRoot();
const folder = join(root, "config", "prometheus");

interface AlertingRule {
  alert?: string;
  record?: string;
  expr: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface PrometheusRule extends KubernetesObject {
  spec: { groups: { name: string; rules: AlertingRule[] }[] };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { uid?: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: { expr: string; datasource?: { uid?: string } }[];
}
interface Dashboard {
  uid: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: string | { query: string } }[] };
}
interface Selectors {
  expr: string;
  selectors: { metric: string; job: string }[];
  error?: string;
}

/** The jobs the ServiceMonitor and the PodMonitor give the targets (their jobLabel's value). */
const operatorJob = "pingpong-operator";
const workloadsJob = "pingpong";
/** Series Prometheus makes itself for every target, exported by no program. */
const perTargetSeries = new Set(["up"]);

let tools: string;
let work: string;
let rule: PrometheusRule;
let dashboard: Dashboard;

const rules = () => rule.spec.groups.flatMap((g) => g.rules);
const alerts = () => rules().filter((r) => r.alert !== undefined);

/** Every PromQL expression of the dashboard, Grafana's variables given values PromQL accepts. */
function dashboardExpressions(): string[] {
  const grafana = (expr: string) => expr.replaceAll("$__rate_interval", "5m");
  const variables = dashboard.templating.list
    .filter((v) => v.type === "query")
    .map((v) => (typeof v.query === "string" ? v.query : v.query.query))
    .map((query) => /^label_values\((.+),\s*\w+\)$/s.exec(query)?.[1] ?? query);
  const targets = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
  return [...targets, ...variables].map(grafana);
}

async function selectorsOf(expressions: string[]): Promise<Selectors[]> {
  const child = execFile(join(tools, "promql-names"));
  const output = new Promise<string>((resolve, reject) => {
    let text = "";
    child.stdout?.on("data", (chunk: Buffer) => (text += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve(text) : reject(new Error(`promql-names exited ${code}`)),
    );
  });
  child.stdin?.end(expressions.map((e) => JSON.stringify(e)).join("\n") + "\n");
  return (await output)
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as Selectors);
}

/** The sample names a /metrics text can hold: each family's, with a histogram's _bucket, _sum, _count. */
function exportedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split("\n")) {
    const typed = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (typed) {
      const [, name = "", type] = typed;
      const suffixes =
        type === "histogram"
          ? ["_bucket", "_sum", "_count"]
          : type === "summary"
            ? ["", "_sum", "_count"]
            : [""];
      for (const suffix of suffixes) names.add(name + suffix);
    } else if (line !== "" && !line.startsWith("#")) {
      names.add(/^[^{ ]+/.exec(line)?.[0] ?? "");
    }
  }
  return names;
}

beforeAll(async () => {
  tools = await toolPath("prometheus");
  work = await mkdtemp(join(tmpdir(), "pingpong-prometheus-"));
  rule = parse(await readFile(join(folder, "prometheus-rule.yaml"), "utf8")) as PrometheusRule;
  dashboard = JSON.parse(await readFile(join(folder, "grafana-dashboard.json"), "utf8")) as Dashboard;
  // promtool reads plain rule files: the PrometheusRule's groups, as the Prometheus Operator writes them.
  await writeFile(join(work, "prometheus-rule.rules.yaml"), stringify({ groups: rule.spec.groups }));
  await copyFile(join(folder, "prometheus-rule.test.yaml"), join(work, "prometheus-rule.test.yaml"));
}, 15 * 60_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe("the alerts", () => {
  it("pass promtool check rules", async () => {
    const { stdout } = await run(join(tools, "promtool"), ["check", "rules", "prometheus-rule.rules.yaml"], {
      cwd: work,
    });
    expect(stdout).toContain(`SUCCESS: ${rules().length} rules found`);
  });

  it("fire and stay silent as their promtool unit tests say", async () => {
    const result = await run(join(tools, "promtool"), ["test", "rules", "prometheus-rule.test.yaml"], {
      cwd: work,
    }).catch((error: unknown) => {
      // promtool exits 1 on a failed case; its output says which and why.
      const { stdout = "", stderr = "" } = error as { stdout?: string; stderr?: string };
      return { stdout: stdout + stderr };
    });
    expect(result.stdout.trim()).toBe("SUCCESS");
  });

  it("each have a unit test that makes them fire and one that keeps them silent", async () => {
    const tests = parse(await readFile(join(folder, "prometheus-rule.test.yaml"), "utf8")) as {
      tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[];
    };
    const cases = tests.tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const { alert } of alerts()) {
      const mine = cases.filter((c) => c.alertname === alert);
      expect(
        mine.some((c) => c.exp_alerts.length > 0),
        `${alert} fires`,
      ).toBe(true);
      expect(
        mine.some((c) => c.exp_alerts.length === 0),
        `${alert} stays silent`,
      ).toBe(true);
    }
  });

  it("each carry a severity, a summary, a description and what to do", () => {
    expect(alerts().length).toBeGreaterThanOrEqual(8);
    for (const { alert, labels, annotations } of alerts()) {
      expect(["warning", "critical"], `${alert} severity`).toContain(labels?.severity);
      for (const key of ["summary", "description", "action"]) {
        expect(annotations?.[key]?.trim().length ?? 0, `${alert} ${key}`).toBeGreaterThan(20);
      }
    }
  });
});

describe("the dashboard", () => {
  it("has unique panel ids, panels that do not overlap, and queries on the chosen data source", () => {
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const cells = new Map<string, string>();
    for (const panel of dashboard.panels) {
      const { x, y, w, h } = panel.gridPos;
      expect(x + w, panel.title).toBeLessThanOrEqual(24);
      for (let i = x; i < x + w; i++) {
        for (let j = y; j < y + h; j++) {
          const taken = cells.get(`${i},${j}`);
          expect(taken, `${panel.title} overlaps ${taken}`).toBeUndefined();
          cells.set(`${i},${j}`, panel.title);
        }
      }
      if (panel.type === "row") continue;
      expect(panel.targets?.length ?? 0, panel.title).toBeGreaterThan(0);
      expect(panel.datasource?.uid).toBe("${datasource}");
    }
  });

  it("shows what the issue asks for", () => {
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)).join("\n");
    for (const shown of [
      "ping_pongs_total", // success ratio and pongs per ponger pod
      "ping_rtt_seconds_bucket", // round-trip time quantiles
      "ponger_pod",
      "pingpong_pair_certificate_expiry_timestamp_seconds",
      "pingpong_operator_certificates_issued_total", // rotations
      "pingpong_operator_reconcile_total", // reconcile rate and errors
    ]) {
      expect(exprs).toContain(shown);
    }
  });
});

describe("the metric names the alerts and the dashboard use", () => {
  let env: OperatorEnvironment | undefined;
  let volume: KubeletVolume | undefined;
  let ponger: Ponger | undefined;
  let pinger: Pinger | undefined;
  const exported = new Map<string, Set<string>>();

  beforeAll(async () => {
    env = await OperatorEnvironment.start();
    const operator = await env.startOperator();
    const namespace = await env.namespace("metrics");
    await env.createPair(namespace, "scraped");
    await env.condition(namespace, "scraped", "CertificatesReady", "True");
    const operatorText = await eventually(
      "the operator's metrics to show the pair",
      async () => {
        const text = await (await fetch(`${operator.probes.url}/metrics`)).text();
        return text.includes('pair="scraped"') && text.includes("certificates_issued_total{")
          ? text
          : undefined;
      },
      20_000,
    );
    exported.set(operatorJob, exportedNames(operatorText));

    const pki = await mintTestPki("metrics");
    volume = await KubeletVolume.create({
      "ponger.crt": pki.server.certificatePem,
      "ponger.key": pki.server.privateKeyPem,
      "pinger.crt": pki.client.certificatePem,
      "pinger.key": pki.client.privateKeyPem,
      "ca.crt": pki.ca.certificatePem,
    });
    const logger = createLogger("metrics-test", { write: () => undefined });
    ponger = await startPonger(
      {
        service: {
          address: "127.0.0.1",
          port: 0,
          protocol: "https",
          tlsCertificate: volume.path("ponger.crt"),
          tlsPrivateKey: volume.path("ponger.key"),
          clientCA: volume.path("ca.crt"),
        },
        metrics: { address: "127.0.0.1", port: 0 },
        podName: "scraped-ponger",
      },
      logger,
    );
    pinger = await startPinger(
      {
        ponger: {
          url: ponger.pingUrl,
          acceptCert: volume.path("ca.crt"),
          clientCertificate: volume.path("pinger.crt"),
          clientPrivateKey: volume.path("pinger.key"),
        },
        intervalMs: 50,
        timeoutMs: 2_000,
        startupGraceMs: 30_000,
        metrics: { address: "127.0.0.1", port: 0 },
        podName: "scraped-pinger",
      },
      logger,
    );
    const running = pinger;
    await eventually("a pong", () => Promise.resolve(running.status().succeeded > 0 || undefined), 10_000);
    const scrape = async (url: string) => (await fetch(`${url}/metrics`)).text();
    exported.set(
      workloadsJob,
      new Set([
        ...exportedNames(await scrape(ponger.probes.url)),
        ...exportedNames(await scrape(pinger.probes.url)),
      ]),
    );
  }, 120_000);

  afterAll(async () => {
    await pinger?.close();
    await ponger?.close();
    await volume?.remove();
    await OperatorEnvironment.stopIfStarted(env);
  });

  it("all parse, and each selector names a metric and a job", async () => {
    const parsed = await selectorsOf([...rules().map((r) => r.expr), ...dashboardExpressions()]);
    for (const { expr, selectors, error } of parsed) {
      expect(error, expr).toBeUndefined();
      expect(selectors.length, expr).toBeGreaterThan(0);
      for (const { metric, job } of selectors) {
        expect(metric, `a selector without a metric name in ${expr}`).not.toBe("");
        expect([operatorJob, workloadsJob], `${metric} in ${expr}`).toContain(job);
      }
    }
  });

  it("are exported by the program behind the job they name", async () => {
    const parsed = await selectorsOf([...rules().map((r) => r.expr), ...dashboardExpressions()]);
    const missing = parsed.flatMap(({ selectors }) =>
      selectors
        .filter(({ metric, job }) => !perTargetSeries.has(metric) && !exported.get(job)?.has(metric))
        .map(({ metric, job }) => `${metric} (job ${job})`),
    );
    expect([...new Set(missing)]).toEqual([]);
    // The check can fail: a name the programs do not export is caught.
    expect(exported.get(workloadsJob)?.has("ping_pongs_total")).toBe(true);
    expect(exported.get(operatorJob)?.has("ping_pongs_total")).toBe(false);
  });

  it("include a ServiceMonitor, PodMonitor, PrometheusRule and dashboard that a real API server accepts", async () => {
    const plane = env?.plane;
    if (!plane) throw new Error("no control plane");
    await applyCrds((...args) => plane.kubectl(...args), join(tools, "crds"));
    const rendered = objectsInYaml(await plane.kubectl("kustomize", folder));
    expect(rendered.map((o) => o.kind).sort()).toEqual([
      "ConfigMap",
      "PodMonitor",
      "PrometheusRule",
      "ServiceMonitor",
    ]);
    // Strict: a field the CRDs' schemas do not know is an error, not silently dropped.
    await plane.kubectl("apply", "--server-side", "--validate=strict", "-k", folder);
    for (const object of rendered) {
      const [group, version] = (object.apiVersion ?? "").split("/");
      const resource = version === undefined ? object.kind : `${object.kind}.${group}`;
      const stored = JSON.parse(
        await plane.kubectl(
          "-n",
          object.metadata?.namespace ?? "",
          "get",
          (resource ?? "").toLowerCase(),
          object.metadata?.name ?? "",
          "-o",
          "json",
        ),
      ) as KubernetesObject & { spec?: object; data?: Record<string, string> };
      const sent = object as KubernetesObject & { spec?: object; data?: Record<string, string> };
      // Everything sent is stored (the schemas add defaults, e.g. a relabeling's action: replace).
      if (sent.spec !== undefined) expect(stored.spec, object.kind).toMatchObject(sent.spec);
      if (sent.data !== undefined) expect(stored.data, object.kind).toEqual(sent.data);
      expect(stored.metadata?.labels).toEqual(expect.objectContaining(object.metadata?.labels ?? {}));
    }
    const configMap = rendered.find((o) => o.kind === "ConfigMap") as KubernetesObject & {
      data: Record<string, string>;
    };
    expect(configMap.metadata?.labels?.grafana_dashboard).toBe("1");
    expect(JSON.parse(configMap.data["pingpong.json"] ?? "")).toEqual(dashboard);
  });
});
