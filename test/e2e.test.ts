/**
 * The product end to end on the real node, as a user meets it: `config/default` installed (the
 * operator as a pod of the image built from the Dockerfile), the mutual-TLS example applied and
 * Ready with live pings, scaled, its leaves and its CA rotated (also interrupted) without one failed
 * ping or restart, and deleted with everything it made. One cluster for the file; every wait is
 * bounded. The operator runs with shorter rotation steps and reads than it ships with (two flags
 * added to the shipped Deployment), so that a CA rotation fits in a test.
 */
import { execFile, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import type { V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ControlPlane } from "../controlplane/control-plane.ts";
import { nodeName } from "../controlplane/node-manifests.ts";
import { runRotate, runStatus } from "../operator/commands/run.ts";
import { commandOutput } from "../operator/commands/testing.ts";
import { eventually, NodeTestLock, startTestControlPlane, testNamespace } from "../controlplane/testing.ts";
import { freePort } from "../lib/ports.ts";
import { projectRoot } from "../lib/repo.ts";
import { installConfigDefault, operatorRolledOut } from "../controlplane/install.ts";
import type { PingPongPair } from "../operator/api/types.ts";
import { selectorString } from "../operator/pingpongpair/names.ts";
import { parseTrustBundle } from "../lib/pki/bundle.ts";
import { createCertificateAuthority, issueLeafCertificate } from "../lib/pki/mint.ts";
import { fetchOnce } from "../workloads/testing/tls-client.ts";
import { connectionFromKubeconfig } from "../operator/runtime/cluster-connection.ts";
import { KubeClient } from "../operator/runtime/kube-client.ts";
import { resources } from "../operator/runtime/resources.ts";

const run = promisify(execFile);
const root = projectRoot();
let lock: NodeTestLock;
let plane: ControlPlane;
let admin: KubeClient;
let namespace: string;

const kubectl = (...args: string[]) => plane.kubectl(...args);

beforeAll(async () => {
  lock = await NodeTestLock.acquire();
  plane = await startTestControlPlane({ node: true, startTimeoutMs: 180_000 });
  admin = new KubeClient(await connectionFromKubeconfig(plane.adminKubeconfig()));
  await installConfigDefault(kubectl, ["--ca-rotation-step=10s", "--health-interval=2s"]);
  namespace = testNamespace("e2e");
  await kubectl("create", "namespace", namespace);
  await kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted");
  // Renews five minutes after it is issued: applied first, checked last, the wait overlaps the rest.
  await kubectl("-n", namespace, "apply", "-f", join(root, "examples", "short-lived-certs.yaml"));
}, 20 * 60_000);

afterAll(async () => {
  // Unset when beforeAll failed: its error is the one to see.
  await (admin as KubeClient | undefined)?.close();
  await (plane as ControlPlane | undefined)?.stop();
  await (lock as NodeTestLock | undefined)?.release();
}, 120_000);

async function pair(name: string): Promise<PingPongPair | undefined> {
  return admin.get<PingPongPair>(resources.pingPongPair, namespace, name);
}

/** Waits until `check` holds of the pair, showing its conditions when it does not in time. */
async function pairWhere(
  name: string,
  what: string,
  check: (p: PingPongPair) => boolean,
  timeoutMs = 120_000,
) {
  let last: PingPongPair | undefined;
  try {
    return await eventually(
      what,
      async () => {
        last = await pair(name);
        return last && last.status?.observedGeneration === last.metadata?.generation && check(last)
          ? last
          : undefined;
      },
      timeoutMs,
    );
  } catch (error) {
    const conditions = (last?.status?.conditions ?? []).map(
      (c) => `${c.type}=${c.status} ${c.reason}: ${c.message}`,
    );
    throw new Error(`${String(error)}\n  ${conditions.join("\n  ")}`, { cause: error });
  }
}

const condition = (p: PingPongPair, type: string) => p.status?.conditions?.find((c) => c.type === type);

async function pods(name: string, component?: string): Promise<V1Pod[]> {
  const selector = `app.kubernetes.io/instance=${name}${component ? `,app.kubernetes.io/component=${component}` : ""}`;
  const list = await admin.list<V1Pod>(resources.pod, namespace, selector);
  return list.items.filter((p) => p.status?.phase === "Running");
}

/** Pings sent and failed since each pinger started, summed over the pair's pinger pods. */
async function pingerTotals(name: string): Promise<{ sent: number; failed: number }> {
  let sent = 0;
  let failed = 0;
  for (const pod of await pods(name, "pinger")) {
    const response = await fetch(`http://${pod.status?.podIP}:9090/status`, {
      signal: AbortSignal.timeout(5_000),
    });
    const status = (await response.json()) as { sent: number; failed: number };
    sent += status.sent;
    failed += status.failed;
  }
  return { sent, failed };
}

async function restarts(name: string): Promise<number> {
  return (await pods(name))
    .flatMap((p) => p.status?.containerStatuses ?? [])
    .reduce((n, c) => n + c.restartCount, 0);
}

/** One check a probe pod makes: open a TCP connection, or GET over HTTP or HTTPS. */
interface ProbeCheck {
  readonly name: string;
  readonly kind: "tcp" | "http" | "https";
  readonly host: string;
  readonly port: number;
  readonly path?: string;
  readonly cert?: string;
  readonly key?: string;
}

/**
 * What a probe pod runs: every check in turn, each result a short phrase, printed as one JSON line.
 * kube-router admits a new pod's address a moment after the pod starts (its next sync after the
 * address appears), so a pod that a policy allows first waits, up to 30 s, until `ADMITTED_BY`
 * passes: the checks then run against the rules as they stand for this pod. A pod no policy allows
 * needs no wait: it is refused before that sync and after.
 */
const probeScript = `
const net = require("node:net"), http = require("node:http"), https = require("node:https");
const settle = (request, resolve) => {
  request.on("timeout", () => request.destroy(Object.assign(new Error("timed out"), { code: "TIMEOUT" })));
  request.on("error", (e) => resolve("refused: " + e.code + (e.code === "ECONNRESET" ? " " + e.message : "")));
};
const check = (c) => new Promise((resolve) => {
  if (c.kind === "tcp") {
    const socket = net.connect({ host: c.host, port: c.port, timeout: 5000 });
    socket.on("connect", () => { socket.destroy(); resolve("connected"); });
    socket.on("timeout", () => { socket.destroy(); resolve("timed out"); });
    socket.on("error", (e) => resolve("refused: " + e.code));
    return;
  }
  const client = c.kind === "https" ? https : http;
  const options = { host: c.host, port: c.port, path: c.path, timeout: 5000, rejectUnauthorized: false, cert: c.cert, key: c.key };
  const request = client.get(options, (response) => {
    response.resume();
    response.on("end", () => resolve("answered " + response.statusCode));
  });
  settle(request, resolve);
});
const admitted = (result) => result === "connected" || result.startsWith("answered");
(async () => {
  const results = {};
  if (process.env.ADMITTED_BY) {
    const started = Date.now(), first = JSON.parse(process.env.ADMITTED_BY);
    let result = await check(first);
    while (!admitted(result) && Date.now() - started < 30000) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      result = await check(first);
    }
    results.admittedBy = admitted(result) ? first.name : first.name + " still " + result + " after 30 s";
  }
  for (const c of JSON.parse(process.env.CHECKS)) results[c.name] = await check(c);
  console.log(JSON.stringify(results));
})();`;

/** Runs `checks` from a pod of the project's image in `ns` (Pod Security restricted) and returns the results. */
async function probeFromPod(
  ns: string,
  name: string,
  checks: readonly ProbeCheck[],
  admittedBy?: ProbeCheck,
): Promise<Record<string, string>> {
  const podName = `${name}-${Math.random().toString(36).slice(2, 8)}`;
  await admin.create<V1Pod>({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: podName, namespace: ns, labels: { "app.kubernetes.io/name": "probe" } },
    spec: {
      restartPolicy: "Never",
      securityContext: { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: "RuntimeDefault" } },
      containers: [
        {
          name: "probe",
          image: "pingpong-operator:dev",
          imagePullPolicy: "Never",
          command: ["/nodejs/bin/node", "-e", probeScript],
          env: [
            { name: "CHECKS", value: JSON.stringify(checks) },
            ...(admittedBy ? [{ name: "ADMITTED_BY", value: JSON.stringify(admittedBy) }] : []),
          ],
          securityContext: {
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            capabilities: { drop: ["ALL"] },
          },
        },
      ],
    },
  });
  try {
    const logs = await eventually(
      `the probe pod ${ns}/${podName} to finish`,
      async () => {
        const pod = await admin.get<V1Pod>(resources.pod, ns, podName);
        const phase = pod?.status?.phase;
        return phase === "Succeeded" || phase === "Failed" ? kubectl("-n", ns, "logs", podName) : undefined;
      },
      90_000,
    );
    return JSON.parse(logs) as Record<string, string>;
  } finally {
    await kubectl("-n", ns, "delete", "pod", podName, "--wait=false");
  }
}

async function patchTls(name: string, tls: Record<string, string>): Promise<void> {
  await kubectl(
    "-n",
    namespace,
    "patch",
    "ppp",
    name,
    "--type",
    "merge",
    "-p",
    JSON.stringify({ spec: { tls } }),
  );
}

describe("a PingPongPair on the real node", () => {
  it("becomes Ready with live pings over mutual TLS", async () => {
    await kubectl("-n", namespace, "apply", "-f", join(root, "examples", "pingpongpair.yaml"));
    // The pinger waits until its ponger is reachable (the Service's endpoint programmed, the new pod
    // admitted by the node's policies) before its first ping: no ping of a new pair fails.
    const healthy = await pairWhere("demo", "demo Ready", (p) => condition(p, "Ready")?.status === "True");
    expect(condition(healthy, "PingHealthy")?.status).toBe("True");
    expect(healthy.status?.ping).toMatchObject({ failed: 0, successRatio: 1 });
    // One node: every path is node-local, and status says so.
    expect(healthy.status?.ping?.paths).toEqual([
      { pingerNode: nodeName, pongerNode: nodeName, pongs: healthy.status?.ping?.succeeded },
    ]);
    expect(healthy.status?.ping?.pathsSummary).toBe(
      `node-local: every pong came from the pinger's own node (${nodeName})`,
    );
    const table = await kubectl("-n", namespace, "get", "pingpongpairs");
    expect(table).toMatch(/^demo\s+True\s+1\/1\s+1\/1\s+(99(\.\d)?|100)%\s+[\d.]+ms\s/m);
  }, 150_000);

  it("spreads pings over three pongers when scaled", async () => {
    await kubectl("-n", namespace, "scale", "ppp", "demo", "--replicas=3");
    const scaled = await pairWhere(
      "demo",
      "pongs from three ponger pods",
      (p) => Object.keys(p.status?.ping?.pongsByPod ?? {}).length === 3,
    );
    const pongers = (await pods("demo", "ponger")).map((p) => p.metadata?.name).sort();
    expect(Object.keys(scaled.status?.ping?.pongsByPod ?? {}).sort()).toEqual(pongers);
  }, 150_000);

  it("rotates its leaves with `pingpong rotate`: every pod loads them, no ping fails, no restarts", async () => {
    const before = await pair("demo");
    const totals = await pingerTotals("demo");
    const cli = ["-n", namespace, "--kubeconfig", plane.kubeconfigPath];
    const rotation = await commandOutput(runRotate, ["demo", "--timeout", "3m", ...cli]);
    expect(rotation).toMatch(/Done: every running pod of \S+\/demo has the new certificates\.\n$/);
    const after = await pairWhere("demo", "the pair as the rotation left it", () => true);
    expect(after.status?.certificates?.ponger?.serial).not.toBe(before?.status?.certificates?.ponger?.serial);
    expect(condition(after, "CertificatesReady")?.reason).toBe("Issued");
    // `pingpong status` reads each pod's /status through the API server: all have the new leaf.
    const shown = await commandOutput(runStatus, ["demo", ...cli]);
    expect(shown).toContain(
      `  paths: node-local: every pong came from the pinger's own node (${nodeName})\n`,
    );
    const podLines = shown.split("\n").filter((line) => /^ {2}demo-(ponger|pinger)-/.test(line));
    expect(podLines.length).toBeGreaterThanOrEqual(4);
    for (const line of podLines)
      expect(line).toMatch(/Running\s+ready\s+0 restarts\s+leaf [0-9a-f]{16} \(current\), trusts 1 CA$/);
    expect(after.status?.certificates?.pinger?.serial).not.toBe(before?.status?.certificates?.pinger?.serial);
    const now = await pingerTotals("demo");
    expect(now.sent).toBeGreaterThan(totals.sent);
    expect(now.failed).toBe(totals.failed);
    expect(await restarts("demo")).toBe(0);
  }, 180_000);

  it("rotates its CA through every step, also when rotateCA changes mid-way, with no failed ping", async () => {
    const before = await pair("demo");
    const totals = await pingerTotals("demo");
    await patchTls("demo", { rotateCA: "e2e-1" });
    await pairWhere("demo", "step 1 of the CA rotation", (p) =>
      (condition(p, "CertificatesReady")?.message ?? "").includes("step 1 of 3"),
    );
    await patchTls("demo", { rotateCA: "e2e-2" });
    const done = await pairWhere(
      "demo",
      "the second CA rotation done",
      (p) =>
        p.status?.ca?.serial !== before?.status?.ca?.serial &&
        condition(p, "CertificatesReady")?.reason === "Issued",
      240_000,
    );
    const secret = await kubectl(
      "-n",
      namespace,
      "get",
      "secret",
      "demo-pinger-tls",
      "-o",
      "jsonpath={.data.ca\\.crt}",
    );
    const bundle = parseTrustBundle(Buffer.from(secret, "base64").toString());
    expect(bundle.map((e) => e.info.sha256Fingerprint)).toEqual([done.status?.ca?.sha256Fingerprint]);
    const events = await kubectl(
      "-n",
      namespace,
      "get",
      "events",
      "--field-selector",
      "involvedObject.name=demo",
    );
    expect(events).toContain("CARotationStep");
    expect(events).toContain("CARotationDone");
    const now = await pingerTotals("demo");
    expect(now.failed).toBe(totals.failed);
    expect(await restarts("demo")).toBe(0);
  }, 300_000);

  it("is reached from the host through kubectl port-forward over mutual TLS, and logs its pings", async () => {
    const secret = async (key: string) =>
      Buffer.from(
        await kubectl(
          "-n",
          namespace,
          "get",
          "secret",
          "demo-pinger-tls",
          "-o",
          `jsonpath={.data.${key.replace(".", "\\.")}}`,
        ),
        "base64",
      ).toString();
    const forward = spawn(plane.binaries.kubectl, [
      "--kubeconfig",
      plane.kubeconfigPath,
      "-n",
      namespace,
      "port-forward",
      "service/demo-ponger",
      "0:8443",
    ]);
    try {
      const port = await new Promise<number>((resolve, reject) => {
        forward.stdout.on("data", (chunk: Buffer) => {
          const match = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(chunk.toString());
          if (match) resolve(Number(match[1]));
        });
        forward.once("exit", (code) => reject(new Error(`kubectl port-forward exited (${code})`)));
      });
      const tls = { ca: await secret("ca.crt"), cert: await secret("tls.crt"), key: await secret("tls.key") };
      const answer = await fetchOnce(`https://127.0.0.1:${port}/ping`, {
        ...tls,
        servername: `demo-ponger.${namespace}.svc`,
      });
      expect(answer).toMatchObject({ status: 200, body: "pong" });
      expect(String(answer.headers["x-ponger-pod"])).toMatch(/^demo-ponger-/);
    } finally {
      forward.kill();
    }
    // The same through the README's `make ping`, with this cluster's kubectl first on PATH.
    const { stdout: pong } = await run(
      "make",
      ["--no-print-directory", "ping", `NAMESPACE=${namespace}`, `PING_PORT=${await freePort()}`],
      {
        cwd: root,
        env: {
          ...process.env,
          KUBECONFIG: plane.kubeconfigPath,
          PATH: `${dirname(plane.binaries.kubectl)}:${process.env.PATH ?? ""}`,
        },
      },
    );
    expect(pong.trim()).toBe("pong");
    const logs = await kubectl("-n", namespace, "logs", "deploy/demo-pinger", "--tail=20");
    expect(logs).toContain('"msg":"Sent ping"');
    expect(logs).toContain('"msg":"Got pong"');
  });

  it("admits only its pinger to the ponger, and only the operator and labelled namespaces to the metrics ports", async () => {
    // Enforced by kube-router on the node. The pinger reaching the ponger and the operator reading
    // every pod's /status from its own namespace are what PingHealthy True is made of.
    const healthy = await pairWhere("demo", "demo Ready", (p) => condition(p, "Ready")?.status === "True");
    expect(condition(healthy, "PingHealthy")?.status).toBe("True");
    const [ponger] = await pods("demo", "ponger");
    const [pinger] = await pods("demo", "pinger");
    const pongerIp = ponger?.status?.podIP ?? "";
    const pingerIp = pinger?.status?.podIP ?? "";
    const service = `demo-ponger.${namespace}.svc`;
    const other = `${namespace}-other`;
    const scrape = `${namespace}-scrape`;
    await kubectl("create", "namespace", other);
    await kubectl("create", "namespace", scrape);
    await kubectl("label", "namespace", scrape, "pingpong.dev/scrape-metrics=true");
    try {
      const strangers = await Promise.all([
        probeFromPod(namespace, "neighbour", [
          { name: "ponger via Service", kind: "tcp", host: service, port: 8443 },
          { name: "ponger pod", kind: "tcp", host: pongerIp, port: 8443 },
          { name: "ponger metrics", kind: "http", host: pongerIp, port: 9090, path: "/metrics" },
          { name: "pinger metrics", kind: "http", host: pingerIp, port: 9090, path: "/metrics" },
        ]),
        probeFromPod(other, "stranger", [
          { name: "ponger via Service", kind: "tcp", host: service, port: 8443 },
          { name: "ponger metrics", kind: "http", host: pongerIp, port: 9090, path: "/metrics" },
        ]),
        probeFromPod(
          scrape,
          "scraper",
          [
            { name: "ponger via Service", kind: "tcp", host: service, port: 8443 },
            { name: "ponger metrics", kind: "http", host: pongerIp, port: 9090, path: "/metrics" },
            { name: "pinger metrics", kind: "http", host: pingerIp, port: 9090, path: "/metrics" },
          ],
          { name: "pinger metrics", kind: "http", host: pingerIp, port: 9090, path: "/metrics" },
        ),
      ]);
      const [neighbour, stranger, scraper] = strangers;
      // Refused at L4 (kube-router rejects with an ICMP port unreachable): not even a TLS handshake.
      expect(neighbour).toEqual({
        "ponger via Service": "refused: ECONNREFUSED",
        "ponger pod": "refused: ECONNREFUSED",
        "ponger metrics": "refused: ECONNREFUSED",
        "pinger metrics": "refused: ECONNREFUSED",
      });
      expect(stranger).toEqual({
        "ponger via Service": "refused: ECONNREFUSED",
        "ponger metrics": "refused: ECONNREFUSED",
      });
      expect(scraper).toEqual({
        admittedBy: "pinger metrics",
        "ponger via Service": "refused: ECONNREFUSED",
        "ponger metrics": "answered 200",
        "pinger metrics": "answered 200",
      });
    } finally {
      await kubectl("delete", "namespace", other, scrape, "--wait=false");
    }
  }, 180_000);

  it("without its NetworkPolicies lets a stranger connect, and refuses it in the handshake; TLS-only is healthy", async () => {
    await kubectl("-n", namespace, "apply", "-f", join(root, "examples", "tls-only.yaml"));
    const stranger = await createCertificateAuthority({
      commonName: "stranger-ca",
      keySize: 2048,
      durationMs: 3_600_000,
    });
    const strangerClient = await issueLeafCertificate(stranger, {
      usage: "client",
      commonName: "demo-pinger",
      dnsNames: [],
      keySize: 2048,
      durationMs: 3_600_000,
    });
    const policies = () =>
      kubectl(
        "-n",
        namespace,
        "get",
        "networkpolicies",
        "-l",
        "app.kubernetes.io/instance=demo",
        "-o",
        "name",
      );
    const setPolicies = (enabled: boolean) =>
      kubectl(
        "-n",
        namespace,
        "patch",
        "ppp",
        "demo",
        "--type",
        "merge",
        "-p",
        JSON.stringify({ spec: { networkPolicy: { enabled } } }),
      );
    await setPolicies(false);
    try {
      await eventually(
        "the pair's NetworkPolicies removed",
        async () => ((await policies()).trim() === "" ? true : undefined),
        60_000,
      );
      // Once kube-router has dropped the rules (it acts on the deletion within moments), a pod of
      // the same namespace opens a connection again, and mutual TLS refuses it: the connection ends
      // as the handshake does, nothing is served.
      const service = `demo-ponger.${namespace}.svc`;
      const tcp: ProbeCheck = { name: "tcp", kind: "tcp", host: service, port: 8443 };
      const results = await probeFromPod(
        namespace,
        "stranger",
        [
          tcp,
          { name: "withoutCertificate", kind: "https", host: service, port: 8443, path: "/ping" },
          {
            name: "withAnotherCa",
            kind: "https",
            host: service,
            port: 8443,
            path: "/ping",
            cert: strangerClient.certificatePem,
            key: strangerClient.privateKeyPem,
          },
        ],
        tcp,
      );
      expect(results).toEqual({
        admittedBy: "tcp",
        tcp: "connected",
        withoutCertificate: "refused: ECONNRESET socket hang up",
        withAnotherCa: "refused: ECONNRESET socket hang up",
      });
      // The ponger that refused the first says why in its log (once a minute per peer: the second
      // may have met the same ponger).
      const pongerLogs = await kubectl(
        "-n",
        namespace,
        "logs",
        "-l",
        selectorString("demo", "ponger"),
        "--tail=-1",
      );
      expect(pongerLogs).toContain('"reason":"no client certificate was presented"');
    } finally {
      await setPolicies(true);
    }
    await eventually(
      "the pair's NetworkPolicies back",
      async () => ((await policies()).trim().split("\n").length === 2 ? true : undefined),
      60_000,
    );

    const tlsOnly = await pairWhere(
      "tls-only",
      "the TLS-only pair Ready",
      (p) => condition(p, "Ready")?.status === "True",
    );
    expect(condition(tlsOnly, "PingHealthy")?.status).toBe("True");
    await kubectl("-n", namespace, "delete", "ppp", "tls-only", "--wait=false");
  }, 240_000);

  it("repairs damage: a ponger pod, a leaf Secret, the operator's pod", async () => {
    const totals = await pingerTotals("demo");
    const before = await pair("demo");

    // A ponger pod goes: the Deployment replaces it; health dips at most briefly.
    const [victim] = await pods("demo", "ponger");
    await kubectl("-n", namespace, "delete", "pod", victim?.metadata?.name ?? "", "--wait=true");
    await pairWhere(
      "demo",
      "Ready again with three pongers",
      (p) => condition(p, "Ready")?.status === "True" && p.status?.ponger?.readyReplicas === 3,
    );

    // A leaf Secret goes: the operator restores it (a new leaf), the pods load it, pings flow.
    await kubectl("-n", namespace, "delete", "secret", "demo-ponger-tls");
    const restored = await pairWhere(
      "demo",
      "the ponger Secret restored and loaded",
      (p) =>
        p.status?.certificates?.ponger?.serial !== before?.status?.certificates?.ponger?.serial &&
        condition(p, "CertificatesReady")?.reason === "Issued",
    );
    expect(condition(restored, "PingHealthy")?.status).toBe("True");
    const afterSecret = await pingerTotals("demo");
    expect(afterSecret.sent).toBeGreaterThan(totals.sent);

    // The operator's pod is killed: a new one takes over and issues nothing.
    const serials = (p: PingPongPair | undefined) =>
      [
        p?.status?.ca?.serial,
        p?.status?.certificates?.ponger?.serial,
        p?.status?.certificates?.pinger?.serial,
      ].join();
    const settled = await pair("demo");
    const killedAt = new Date();
    await kubectl(
      "-n",
      "pingpong-system",
      "delete",
      "pod",
      "-l",
      "app.kubernetes.io/name=pingpong-operator",
      "--grace-period=0",
      "--force",
    );
    await operatorRolledOut(kubectl, 120);
    const leaderLog = await eventually(
      "the new operator to lead",
      async () => {
        const logs = await kubectl("-n", "pingpong-system", "logs", "deploy/pingpong-operator");
        return logs.includes("Operator started") ? logs : undefined;
      },
      120_000,
    );
    expect(leaderLog).toContain("Became the leader");
    await pairWhere("demo", "Ready under the new operator", (p) => condition(p, "Ready")?.status === "True");
    expect(serials(await pair("demo"))).toBe(serials(settled));
    const issuedSince = JSON.parse(
      await kubectl(
        "-n",
        namespace,
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=demo",
        "-o",
        "json",
      ),
    ) as { items: { reason: string; lastTimestamp?: string; eventTime?: string }[] };
    const issuedAfterKill = issuedSince.items.filter(
      (e) =>
        e.reason.startsWith("Issued") &&
        Date.parse(e.lastTimestamp ?? e.eventTime ?? "") > killedAt.getTime(),
    );
    expect(issuedAfterKill).toEqual([]);
  }, 300_000);

  it(
    "renews short-lived leaves by itself, with no failed ping",
    async () => {
      const first = await pairWhere(
        "short-lived",
        "short-lived Ready",
        (p) => condition(p, "Ready")?.status === "True",
      );
      const totals = await pingerTotals("short-lived");
      const renewalTime = Date.parse(first.status?.certificates?.ponger?.renewalTime ?? "");
      expect(renewalTime - Date.now()).toBeLessThan(5 * 60_000);
      const renewed = await pairWhere(
        "short-lived",
        "renewed leaves loaded by every pod",
        (p) =>
          p.status?.certificates?.ponger?.serial !== first.status?.certificates?.ponger?.serial &&
          p.status?.certificates?.pinger?.serial !== first.status?.certificates?.pinger?.serial &&
          condition(p, "CertificatesReady")?.reason === "Issued",
        Math.max(0, renewalTime - Date.now()) + 120_000,
      );
      expect(Date.parse(renewed.status?.certificates?.ponger?.notAfter ?? "")).toBeGreaterThan(
        Date.parse(first.status?.certificates?.ponger?.notAfter ?? ""),
      );
      const now = await pingerTotals("short-lived");
      expect(now.sent).toBeGreaterThan(totals.sent);
      expect(now.failed).toBe(totals.failed);
      expect(await restarts("short-lived")).toBe(0);
    },
    9 * 60_000,
  );

  it("takes every child and pod with it when deleted", async () => {
    await kubectl("-n", namespace, "delete", "ppp", "demo", "--wait=true", "--timeout=60s");
    await eventually(
      "the pair's children and pods to be gone",
      async () => {
        const left = await kubectl(
          "-n",
          namespace,
          "get",
          "deployments,services,secrets,configmaps,pods",
          "-l",
          "app.kubernetes.io/instance=demo",
          "-o",
          "name",
        );
        return left.trim() === "" ? true : undefined;
      },
      120_000,
    );
  }, 150_000);
});
