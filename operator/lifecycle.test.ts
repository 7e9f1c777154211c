/**
 * The operator over time: restarts re-issue nothing and settle to zero writes; two operator processes
 * elect one leader, only it writes, and when it is killed the other takes over.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Secret } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../controlplane/testing.ts";
import { CliProcess } from "../workloads/testing/processes.ts";
import { metricValue } from "../workloads/testing/tls-client.ts";
import { secretText } from "./pingpongpair/certificates.ts";
import { inspectCertificate } from "../lib/pki/inspect.ts";
import type { RunningOperator } from "./operator.ts";
import { resources } from "./runtime/resources.ts";
import { OperatorEnvironment, operatorNamespace } from "./testing/environment.ts";

let env: OperatorEnvironment;
let namespace: string;

beforeAll(async () => {
  env = await OperatorEnvironment.start();
  namespace = await env.namespace("life");
});
afterAll(async () => {
  await OperatorEnvironment.stopIfStarted(env);
});

async function serials(pairs: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const pair of pairs) {
    for (const name of [`${pair}-ca`, `${pair}-ponger-tls`, `${pair}-pinger-tls`]) {
      const secret = await env.admin.get<V1Secret>(resources.secret, namespace, name);
      out.push(inspectCertificate(secretText(secret, "tls.crt") ?? "").serial);
    }
  }
  return out;
}

/** Waits until the operator has made no write for `quietMs`; returns how many writes it made in all. */
async function settled(operator: RunningOperator, quietMs = 3_000, timeoutMs = 60_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = await operator.client.writeCount();
  let since = Date.now();
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    const now = await operator.client.writeCount();
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) {
      return now;
    }
  }
  throw new Error(`the operator kept writing for ${timeoutMs / 1000}s (${last} writes)`);
}

describe("restarting the operator", () => {
  it("re-issues no certificate that did not need it, and settles to zero writes", async () => {
    const first = await env.startOperator();
    await Promise.all(["r1", "r2", "r3"].map((name) => env.createPair(namespace, name)));
    for (const name of ["r1", "r2", "r3"]) await env.condition(namespace, name, "CertificatesReady", "True");
    await settled(first);
    const before = await serials(["r1", "r2", "r3"]);
    await env.stopOperators();

    const second = await env.startOperator();
    await second.leading;
    // The restart looks at every pair once; what it writes then must be all it writes.
    const afterRestart = await settled(second);
    const reconciles = async () =>
      metricValue(
        await (await fetch(`${second.probes.url}/metrics`)).text(),
        'pingpong_operator_reconcile_total{controller="pingpongpair",result="success"}',
      ) ?? 0;
    const afterStart = await reconciles();
    expect(afterStart).toBeGreaterThanOrEqual(3);
    // Each pair looked at again (an annotation someone else adds queues it): still nothing to write.
    for (const name of ["r1", "r2", "r3"]) {
      await env.admin.mergePatch(resources.pingPongPair, namespace, name, {
        metadata: { annotations: { "example.com/poked": "yes" } },
      });
    }
    await eventually("three more reconciles", async () =>
      (await reconciles()) >= afterStart + 3 ? true : undefined,
    );
    expect(await second.client.writeCount()).toBe(afterRestart);
    expect(await serials(["r1", "r2", "r3"])).toEqual(before);
    // Nothing changed, so a restart needs no writes at all: every child already matches.
    const text = await (await fetch(`${second.probes.url}/metrics`)).text();
    const writeLines = text
      .split("\n")
      .filter((l) =>
        /^pingpong_operator_api_requests_total\{verb="(create|apply|patch|update|delete)"/.test(l),
      );
    expect(writeLines, writeLines.join("\n")).toEqual([]);
    expect(afterRestart).toBe(0);
  });
});

describe("two operator processes", () => {
  let dir: string;
  const processes: CliProcess[] = [];

  beforeAll(async () => {
    await env.stopOperators();
    dir = await mkdtemp(join(tmpdir(), "leader-"));
    await writeFile(
      join(dir, "kubeconfig"),
      await env.plane.serviceAccountKubeconfig(operatorNamespace, "pingpong-operator"),
    );
  });
  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop("SIGKILL")));
    await rm(dir, { recursive: true, force: true });
  });

  const start = () => {
    const process = new CliProcess(
      [
        "operator",
        "--kubeconfig",
        join(dir, "kubeconfig"),
        "--metrics-address",
        "127.0.0.1",
        "--metrics-port",
        "0",
        "--leader-elect",
        "true",
        "--namespace",
        operatorNamespace,
        "--ca-rotation-step",
        "1s",
      ],
      { LOG_LEVEL: "info", PINGPONG_IMAGE: "pingpong-operator:test" },
    );
    processes.push(process);
    return process;
  };
  const writes = async (process: CliProcess) => {
    const text = await (
      await fetch(`${await process.logged("Metrics and probes listening", "url")}/metrics`)
    ).text();
    return [
      ...text.matchAll(
        /^pingpong_operator_api_requests_total\{verb="(create|apply|patch|update|delete)",resource="(\w+)"[^}]*\} (\d+)/gm,
      ),
    ]
      .filter((m) => m[2] !== "leases")
      .reduce((sum, m) => sum + Number(m[3]), 0);
  };

  it("lets only the leader write, and hands over when the leader is killed", async () => {
    const a = start();
    await a.waitForLog((l) => l.msg === "Became the leader", 30_000);
    const b = start();
    await b.waitForLog((l) => l.msg === "Waiting for leadership");
    await env.createPair(namespace, "led");
    await env.condition(namespace, "led", "CertificatesReady", "True");
    expect(await writes(a)).toBeGreaterThan(0);
    expect(await writes(b)).toBe(0);
    expect(b.logs.some((l) => l.msg === "Became the leader")).toBe(false);
    expect((await fetch(`${await b.logged("Metrics and probes listening", "url")}/readyz`)).status).toBe(200);

    await a.stop("SIGKILL");
    await b.waitForLog((l) => l.msg === "Became the leader", 45_000);
    await env.createPair(namespace, "after");
    await env.condition(namespace, "after", "CertificatesReady", "True");
    expect(await writes(b)).toBeGreaterThan(0);
  });

  it("hands over at once when the leader stops cleanly", async () => {
    const [b] = processes.filter((p) => !p.ended);
    if (!b) throw new Error("no running operator");
    const c = start();
    await c.waitForLog((l) => l.msg === "Waiting for leadership");
    const stopped = Date.now();
    expect(await b.stop("SIGTERM")).toBe(0);
    expect(b.logs.some((l) => l.msg === "Released leadership")).toBe(true);
    await c.waitForLog((l) => l.msg === "Became the leader", 10_000);
    // Well under the 15 s lease: the Lease was released, not left to expire.
    expect(Date.now() - stopped).toBeLessThan(8_000);
    await env.createPair(namespace, "third");
    await env.condition(namespace, "third", "CertificatesReady", "True");
    expect(await writes(c)).toBeGreaterThan(0);
  });
});
