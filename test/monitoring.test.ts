/**
 * A real Prometheus watching pairs on the real node, set up as a kube-prometheus-stack user would:
 * the Prometheus Operator from its own bundle.yaml, a `Prometheus` in a namespace labelled
 * pingpong.dev/scrape-metrics=true (the pairs' NetworkPolicies admit it) selecting the project's
 * ServiceMonitor, PodMonitor and PrometheusRule (config/prometheus). Then fire drills of each kind,
 * run with `pingpong drill`: PingHealthy turns False and says why, the success alert turns pending
 * and firing on scraped data with drill="true", and everything recovers by itself, with no restart
 * and no certificate touched. The test's copy of the success alert waits 20 s instead of 10 m and
 * rates over 1 m instead of 5 m, so that a drill and its recovery fit in minutes; every other rule is
 * as shipped. Images: hack/images/build-prometheus-images.sh (`make prometheus`).
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { V1Pod, V1Secret } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, parseAllDocuments, stringify } from "yaml";
import type { ControlPlane } from "../controlplane/control-plane.ts";
import { installConfigDefault } from "../controlplane/install.ts";
import { eventually, NodeTestLock, startTestControlPlane, testNamespace } from "../controlplane/testing.ts";
import { projectRoot } from "../lib/repo.ts";
import type { PingPongPair } from "../operator/api/types.ts";
import { connectionFromKubeconfig } from "../operator/runtime/cluster-connection.ts";
import { KubeClient } from "../operator/runtime/kube-client.ts";
import { resources } from "../operator/runtime/resources.ts";
import { cliPath } from "../workloads/testing/processes.ts";
import { prometheusStack } from "./tools.ts";

const run = promisify(execFile);
const root = projectRoot();
const monitoring = "monitoring";
let lock: NodeTestLock;
let plane: ControlPlane;
let admin: KubeClient;
let namespace: string;
let work: string;

const kubectl = (...args: string[]) => plane.kubectl(...args);

async function applyYaml(name: string, objects: unknown[]): Promise<void> {
  const file = join(work, name);
  await writeFile(file, objects.map((o) => stringify(o)).join("---\n"));
  await kubectl("apply", "--server-side", "--force-conflicts", "-f", file);
}

/** Prometheus's RBAC and the `Prometheus` itself, selecting the project's monitors and rules everywhere. */
function prometheusObjects(): unknown[] {
  const selector = { matchLabels: { "app.kubernetes.io/part-of": "pingpong-operator" } };
  return [
    { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "prometheus", namespace: monitoring } },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name: "pingpong-test-prometheus" },
      rules: [
        {
          apiGroups: [""],
          resources: ["nodes", "services", "endpoints", "pods"],
          verbs: ["get", "list", "watch"],
        },
        { apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: ["get", "list", "watch"] },
        { nonResourceURLs: ["/metrics"], verbs: ["get"] },
      ],
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: "pingpong-test-prometheus" },
      roleRef: {
        apiGroup: "rbac.authorization.k8s.io",
        kind: "ClusterRole",
        name: "pingpong-test-prometheus",
      },
      subjects: [{ kind: "ServiceAccount", name: "prometheus", namespace: monitoring }],
    },
    {
      apiVersion: "monitoring.coreos.com/v1",
      kind: "Prometheus",
      metadata: { name: "pingpong", namespace: monitoring },
      spec: {
        version: "v3.10.0",
        image: "quay.io/prometheus/prometheus:v3.10.0",
        serviceAccountName: "prometheus",
        replicas: 1,
        evaluationInterval: "5s",
        serviceMonitorSelector: selector,
        serviceMonitorNamespaceSelector: {},
        podMonitorSelector: selector,
        podMonitorNamespaceSelector: {},
        ruleSelector: selector,
        ruleNamespaceSelector: {},
        resources: { requests: { cpu: "100m", memory: "200Mi" } },
      },
    },
  ];
}

/** config/prometheus as `kubectl kustomize` renders it, the success alert made quick (see the header). */
async function monitorsForTest(): Promise<unknown[]> {
  const rendered = await kubectl("kustomize", join(root, "config", "prometheus"));
  return parseAllDocuments(rendered).map((doc) => {
    const object = doc.toJS() as {
      kind: string;
      spec?: { groups?: { rules: { alert?: string; expr: string; for?: string }[] }[] };
    };
    for (const rule of object.spec?.groups?.flatMap((g) => g.rules) ?? []) {
      if (rule.alert !== "PingPongSuccessBelowThreshold") continue;
      rule.for = "20s";
      rule.expr = rule.expr.replaceAll("[5m]", "[1m]");
    }
    return object;
  });
}

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

async function prometheusUrl(): Promise<string> {
  const pod = await admin.get<V1Pod>(resources.pod, monitoring, "prometheus-pingpong-0");
  const ip = pod?.status?.podIP;
  if (!ip) throw new Error("the Prometheus pod has no IP yet");
  return `http://${ip}:9090`;
}

async function query(expr: string): Promise<Sample[]> {
  const url = `${await prometheusUrl()}/api/v1/query?query=${encodeURIComponent(expr)}`;
  const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  const body = (await response.json()) as { status: string; data: { result: Sample[] }; error?: string };
  if (body.status !== "success") throw new Error(`${expr}: ${body.error ?? body.status}`);
  return body.data.result;
}

async function pair(name: string): Promise<PingPongPair | undefined> {
  return admin.get<PingPongPair>(resources.pingPongPair, namespace, name);
}

const condition = (p: PingPongPair | undefined, type: string) =>
  p?.status?.conditions?.find((c) => c.type === type);

async function pods(name: string): Promise<V1Pod[]> {
  const list = await admin.list<V1Pod>(resources.pod, namespace, `app.kubernetes.io/instance=${name}`);
  return list.items;
}

const restarts = async (name: string) =>
  (await pods(name))
    .flatMap((p) => p.status?.containerStatuses ?? [])
    .reduce((n, c) => n + c.restartCount, 0);

async function leafSerials(name: string): Promise<string[]> {
  const secrets = await Promise.all(
    ["ca", "ponger-tls", "pinger-tls"].map((s) =>
      admin.get<V1Secret>(resources.secret, namespace, `${name}-${s}`),
    ),
  );
  return secrets.map((s) => s?.data?.["tls.crt"] ?? "missing");
}

/** `pingpong drill NAME ...args` as a user runs it: its output and exit code. */
async function drillCommand(name: string, ...args: string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout } = await run(process.execPath, [cliPath, "drill", name, "-n", namespace, ...args], {
      env: { ...process.env, KUBECONFIG: plane.kubeconfigPath },
      timeout: 8 * 60_000,
    });
    return { code: 0, output: stdout };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, output: `${failed.stdout ?? ""}${failed.stderr ?? ""}` };
  }
}

const pairs = ["abort", "delay", "refuse", "mild"];

beforeAll(async () => {
  const stack = await prometheusStack();
  lock = await NodeTestLock.acquire();
  work = await mkdtemp(join(tmpdir(), "pingpong-monitoring-"));
  plane = await startTestControlPlane({ node: true, startTimeoutMs: 180_000, extraImages: stack.images });
  admin = new KubeClient(await connectionFromKubeconfig(plane.adminKubeconfig()));
  await installConfigDefault(kubectl, ["--health-interval=2s"]);
  // The Prometheus Operator from its own manifests (CRDs, RBAC, Deployment in `default`).
  await kubectl("apply", "--server-side", "-f", join(stack.stack, "bundle.yaml"));
  await kubectl("-n", "default", "rollout", "status", "deployment/prometheus-operator", "--timeout=180s");
  await kubectl("create", "namespace", monitoring);
  await kubectl("label", "namespace", monitoring, "pingpong.dev/scrape-metrics=true");
  await applyYaml("prometheus.yaml", prometheusObjects());
  await applyYaml("monitors.yaml", await monitorsForTest());
  namespace = testNamespace("drill");
  await kubectl("create", "namespace", namespace);
  await kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted");
  await applyYaml(
    "pairs.yaml",
    pairs.map((name) => ({
      apiVersion: "pingpong.dev/v1alpha1",
      kind: "PingPongPair",
      metadata: { name, namespace },
      spec: {},
    })),
  );
  for (const name of pairs) {
    await eventually(
      `${name} Ready`,
      async () => (condition(await pair(name), "Ready")?.status === "True" ? true : undefined),
      180_000,
    );
  }
  await eventually(
    "Prometheus answering",
    async () => ((await query("up")).length > 0 ? true : undefined),
    180_000,
  );
}, 20 * 60_000);

afterAll(async () => {
  await (admin as KubeClient | undefined)?.close();
  await (plane as ControlPlane | undefined)?.stop();
  await (lock as NodeTestLock | undefined)?.release();
  if (work) await rm(work, { recursive: true, force: true });
}, 120_000);

describe("a real Prometheus on the node", () => {
  it("scrapes the operator and every pod of each pair, with the labels the alerts join on", async () => {
    const scraped = await eventually(
      "every pair pod and the operator up",
      async () => {
        const up = await query(`up{job=~"pingpong|pingpong-operator"} == 1`);
        const pairPods = up.filter((s) => s.metric.job === "pingpong" && s.metric.namespace === namespace);
        return pairPods.length === 2 * pairs.length && up.some((s) => s.metric.job === "pingpong-operator")
          ? pairPods
          : undefined;
      },
      120_000,
    );
    expect(new Set(scraped.map((s) => `${s.metric.pair}/${s.metric.component}`))).toEqual(
      new Set(pairs.flatMap((p) => [`${p}/ponger`, `${p}/pinger`])),
    );
    // The series each alert's expression selects exist, with namespace and pair to join on.
    const rule = parse(
      await kubectl("-n", "pingpong-system", "get", "prometheusrule", "pingpong-operator", "-o", "yaml"),
    ) as {
      spec: { groups: { rules: { expr: string }[] }[] };
    };
    const names = new Set(
      rule.spec.groups
        .flatMap((g) => g.rules)
        .flatMap((r) => [...r.expr.matchAll(/\b(ping_[a-z_]+|pingpong_pair_[a-z_]+)\{/g)].map((m) => m[1])),
    );
    expect(names.size).toBeGreaterThanOrEqual(6);
    for (const name of names) {
      const series = await eventually(
        `${name} for the pairs`,
        async () => {
          const found = await query(`${name}{namespace="${namespace}"}`);
          return found.length > 0 ? found : undefined;
        },
        90_000,
      );
      expect(
        series.every((s) => pairs.includes(s.metric.pair ?? "")),
        name,
      ).toBe(true);
    }
  });

  it(
    'hears each kind of drill: PingHealthy False, the alert pending then firing with drill="true", then recovery',
    async () => {
      const before = Object.fromEntries(
        await Promise.all(
          pairs.map(
            async (p) => [p, { restarts: await restarts(p), serials: await leafSerials(p) }] as const,
          ),
        ),
      );
      const alertStates = new Map<string, Set<string>>(pairs.map((p) => [p, new Set<string>()]));
      const watching = { on: true };
      const watcher = (async () => {
        while (watching.on) {
          for (const sample of await query(
            `ALERTS{alertname="PingPongSuccessBelowThreshold",namespace="${namespace}"}`,
          ).catch(() => [])) {
            if (sample.metric.drill === "true")
              alertStates.get(sample.metric.pair ?? "")?.add(sample.metric.alertstate ?? "");
          }
          await new Promise((r) => setTimeout(r, 2_000));
        }
      })();
      const [abort, delay, refuse, mild] = await Promise.all([
        drillCommand("abort", "--abort", "100%", "--for", "60s"),
        drillCommand("delay", "--delay", "3s", "--for", "60s"),
        drillCommand("refuse", "--refuse-client-certs", "--for", "60s"),
        // 50 ms on a 2 s timeout: every ping still pongs, so nothing is detected.
        drillCommand("mild", "--delay", "50ms", "--for", "30s"),
      ]);
      watching.on = false;
      await watcher;
      for (const [name, result] of [
        ["abort", abort],
        ["delay", delay],
        ["refuse", refuse],
      ] as const) {
        expect(result.code, `${name}:\n${result.output}`).toBe(0);
        expect(result.output).toMatch(/fault started: 1 ponger pod\(s\) inject it/);
        expect(result.output).toMatch(/PingHealthy False after [\d.]+ s \(time to detect\): PingsFailing/);
        expect(result.output).toMatch(/PingHealthy True again after [\d.]+ s \(time to recover\)/);
        expect(result.output).toMatch(/^Done: detected in [\d.]+ s, recovered in [\d.]+ s\.$/m);
        process.stdout.write(`drill ${name}:\n${result.output}`);
        expect([...(alertStates.get(name) ?? [])].sort(), name).toEqual(["firing", "pending"]);
      }
      expect(mild.code, mild.output).toBe(1);
      expect(mild.output).toContain("the fault was never detected");
      // The alerts resolve by themselves; nothing restarted, no certificate re-issued.
      await eventually(
        "the drill alerts resolved",
        async () =>
          (await query(`ALERTS{alertname="PingPongSuccessBelowThreshold",namespace="${namespace}"}`))
            .length === 0
            ? true
            : undefined,
        180_000,
      );
      for (const name of pairs) {
        expect(await restarts(name), name).toBe(before[name]?.restarts);
        expect(await leafSerials(name), name).toEqual(before[name]?.serials);
        expect((await pair(name))?.status?.drill?.state, name).toBe("Ended");
      }
    },
    10 * 60_000,
  );

  it("says why PingHealthy is False during a drill, in status and Events", async () => {
    const events = JSON.parse(await kubectl("-n", namespace, "get", "events", "-o", "json")) as {
      items: { reason: string; involvedObject: { name: string }; message: string }[];
    };
    const of = (name: string) =>
      events.items.filter((e) => e.involvedObject.name === name).map((e) => e.reason);
    for (const name of ["abort", "delay", "refuse"]) {
      expect(of(name)).toEqual(
        expect.arrayContaining(["DrillStarted", "PingsFailing", "DrillEnded", "Healthy"]),
      );
    }
    const failing = events.items.find(
      (e) => e.involvedObject.name === "abort" && e.reason === "PingsFailing",
    );
    expect(failing?.message).toMatch(/http_status.*a fire drill is running until/s);
  });

  it(
    "stops injecting at until on the ponger's own clock, even with the operator down",
    async () => {
      const until = Date.now() + 40_000;
      expect((await drillCommand("abort", "--abort", "100%", "--for", "40s", "--no-follow")).code).toBe(0);
      await eventually(
        "the ponger injecting",
        async () => ((await pair("abort"))?.status?.drill?.injectingPongers === 1 ? true : undefined),
        120_000,
      );
      await kubectl("-n", "pingpong-system", "scale", "deployment/pingpong-operator", "--replicas=0");
      try {
        const [pinger] = (await pods("abort")).filter(
          (p) => p.metadata?.labels?.["app.kubernetes.io/component"] === "pinger",
        );
        const status = async () =>
          (await (
            await fetch(`http://${pinger?.status?.podIP ?? ""}:9090/status`, {
              signal: AbortSignal.timeout(5_000),
            })
          ).json()) as {
            lastPongTime?: string;
          };
        const pongAfter = await eventually(
          "a pong after until",
          async () => {
            const last = Date.parse((await status()).lastPongTime ?? "");
            return last > until ? last : undefined;
          },
          90_000,
        );
        expect(pongAfter).toBeGreaterThan(until);
      } finally {
        await kubectl("-n", "pingpong-system", "scale", "deployment/pingpong-operator", "--replicas=1");
      }
    },
    4 * 60_000,
  );
});
