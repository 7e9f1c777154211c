/**
 * Rotations that follow what the pods have loaded, against the real API server with stand-in pods
 * (real ponger and pinger processes on loopback pinging every 50 ms, their Secret volumes written
 * kubelet-style). A kubelet that does not deliver holds the CA rotation at its first step, and past
 * the deadline the status names the pods; a second rotateCA in the middle keeps every CA a live leaf
 * needs; not one ping fails. A leaf rotation is reported done only once every pod has loaded it.
 */
import type { CoreV1Event, V1Secret } from "@kubernetes/client-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../controlplane/testing.ts";
import type { PingPongPair } from "./api/types.ts";
import { parseTrustBundle } from "../lib/pki/bundle.ts";
import { childNames } from "./pingpongpair/names.ts";
import { OperatorEnvironment } from "./testing/environment.ts";
import { StandIns } from "./testing/stand-ins.ts";
import { resources } from "./runtime/resources.ts";

const rotationStepMs = 1_000;
let env: OperatorEnvironment;
let namespace: string;
const standIns: StandIns[] = [];

beforeAll(async () => {
  env = await OperatorEnvironment.start();
  namespace = await env.namespace("gating", false);
  await env.startOperator({ healthIntervalMs: 500, rotationStepMs });
});
afterEach(async () => {
  await Promise.all(standIns.splice(0).map((s) => s.stop()));
});
afterAll(async () => {
  await OperatorEnvironment.stopIfStarted(env);
});

interface PingerCounts {
  sent: number;
  failed: number;
  lastFailure: { message: string } | null;
}

async function pingerCounts(pods: StandIns): Promise<PingerCounts> {
  const url = await pods.pingers[0]?.logged("Metrics and probes listening", "url");
  return (await (await fetch(`${url}/status`)).json()) as PingerCounts;
}

async function pairWithPods(name: string): Promise<StandIns> {
  await env.createPair(namespace, name, { pinger: { interval: "100ms" } });
  await env.condition(namespace, name, "CertificatesReady", "True");
  const pair = (await env.pair(namespace, name)) as PingPongPair;
  const pods = await StandIns.start(env.admin, pair, { intervalMs: 50, syncDelayMs: 300 });
  standIns.push(pods);
  await env.condition(namespace, name, "PingHealthy", "True");
  await env.condition(namespace, name, "CertificatesReady", "True", "Issued");
  return pods;
}

async function patchTls(name: string, tls: Record<string, string>): Promise<void> {
  const pair = (await env.pair(namespace, name)) as PingPongPair;
  await env.admin.apply({
    apiVersion: "pingpong.dev/v1alpha1",
    kind: "PingPongPair",
    metadata: { name, namespace },
    spec: { ...pair.spec, tls: { ...pair.spec?.tls, ...tls } },
  });
}

async function certificatesReady(name: string, reason: string, timeoutMs = 30_000): Promise<string> {
  const pair = await env.condition(namespace, name, "CertificatesReady", "True", reason, timeoutMs);
  return pair.status?.conditions?.find((c) => c.type === "CertificatesReady")?.message ?? "";
}

async function events(name: string): Promise<CoreV1Event[]> {
  const list = await env.admin.list<CoreV1Event>(resources.event, namespace);
  return list.items.filter((e) => e.involvedObject.name === name);
}

describe("rotations gated on what the pods have loaded", () => {
  it("holds a CA rotation until every pod trusts the new CA, survives a second rotateCA mid-way, and no ping fails", async () => {
    const pods = await pairWithPods("ca");
    const caBefore = (await env.pair(namespace, "ca"))?.status?.ca?.sha256Fingerprint;

    // A kubelet that does not deliver: the Secrets change, the pods' files do not.
    pods.pauseSync();
    await patchTls("ca", { rotateCA: "first" });
    const stuck = await certificatesReady("ca", "RotationStuck", 5 * rotationStepMs + 20_000);
    expect(stuck).toContain("step 1 of 3");
    expect(stuck).toContain("ca-ponger-standin (has not loaded the new CA)");
    expect(stuck).toContain("ca-pinger-standin-0 (has not loaded the new CA)");
    const warning = await eventually("a RotationStuck Warning event", async () =>
      (await events("ca")).find((e) => e.reason === "RotationStuck" && e.type === "Warning"),
    );
    expect(warning.message).toContain("waiting for ca-ponger-standin");

    // A new rotateCA while step 1 waits: every CA the live leaves need stays trusted.
    await patchTls("ca", { rotateCA: "second" });
    const secret = await eventually("a bundle with the newest CA and both before it", async () => {
      const s = await env.admin.get<V1Secret>(resources.secret, namespace, childNames("ca").pongerSecret);
      const bundle = parseTrustBundle(Buffer.from(s?.data?.["ca.crt"] ?? "", "base64").toString());
      return bundle.length === 3 ? bundle : undefined;
    });
    expect(secret.map((e) => e.info.sha256Fingerprint)).toContain(caBefore);

    pods.resumeSync();
    await certificatesReady("ca", "Issued", 60_000);
    const pair = (await env.pair(namespace, "ca")) as PingPongPair;
    const finalBundle = parseTrustBundle(
      Buffer.from(
        (await env.admin.get<V1Secret>(resources.secret, namespace, childNames("ca").pingerSecret))?.data?.[
          "ca.crt"
        ] ?? "",
        "base64",
      ).toString(),
    );
    expect(finalBundle.map((e) => e.info.sha256Fingerprint)).toEqual([pair.status?.ca?.sha256Fingerprint]);
    expect(pair.status?.ca?.sha256Fingerprint).not.toBe(caBefore);
    const reasons = (await events("ca")).map((e) => e.reason);
    expect(reasons).toContain("CARotationStep");
    expect(reasons).toContain("CARotationDone");

    const counts = await pingerCounts(pods);
    expect(counts.sent).toBeGreaterThan(50);
    expect(counts.lastFailure).toBeNull();
    expect(counts.failed).toBe(0);
  });

  it("reports a leaf rotation as loading until every pod has the new leaf, with no failed ping", async () => {
    const pods = await pairWithPods("leaf");
    pods.pauseSync();
    await patchTls("leaf", { rotate: "now" });
    const loading = await certificatesReady("leaf", "Loading");
    expect(loading).toMatch(
      /^leaf certificates issued; waiting for leaf-(ponger-standin|pinger-standin-0) \(has not loaded its new certificate\)/,
    );
    pods.resumeSync();
    await certificatesReady("leaf", "Issued");
    expect((await pingerCounts(pods)).failed).toBe(0);
  });
});
