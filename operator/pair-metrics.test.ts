import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import type { PingPongPair } from "./api/types.ts";
import { registerLeaderMetric, registerPairMetrics } from "./pair-metrics.ts";

const pair = (name: string, overrides: Partial<PingPongPair> = {}): PingPongPair => ({
  apiVersion: "pingpong.dev/v1alpha1",
  kind: "PingPongPair",
  metadata: { name, namespace: "shop" },
  spec: {},
  ...overrides,
});

const ready = pair("ready", {
  spec: { pinger: { successThreshold: 0.99 } },
  status: {
    conditions: [
      { type: "Ready", status: "True", reason: "Ready", message: "", lastTransitionTime: "" },
      { type: "CertificatesReady", status: "True", reason: "Issued", message: "", lastTransitionTime: "" },
    ],
    ca: { notAfter: "2027-11-21T00:00:00Z", renewalTime: "2027-07-23T00:00:00Z" },
    certificates: { ponger: { notAfter: "2026-11-22T00:00:00.000Z", renewalTime: "2026-11-21T16:00:00Z" } },
    ping: { successRatio: 0.985 },
  },
});
const fresh = pair("fresh");

async function scrape(pairs: PingPongPair[]): Promise<string[]> {
  const registry = new Registry();
  registerPairMetrics(registry, () => pairs);
  return (await registry.metrics()).split("\n").filter((line) => line !== "" && !line.startsWith("#"));
}

describe("pair metrics", () => {
  it("give each condition one series, labelled with its status and reason", async () => {
    const lines = await scrape([ready, fresh]);
    expect(lines).toContain(
      'pingpong_pair_status_condition{namespace="shop",pair="ready",type="Ready",status="True",reason="Ready"} 1',
    );
    expect(lines.filter((l) => l.startsWith("pingpong_pair_status_condition"))).toHaveLength(2);
  });

  it("give certificate expiry and renewal as Unix seconds, only for what the status holds", async () => {
    const lines = await scrape([ready, fresh]);
    expect(lines).toContain(
      'pingpong_pair_certificate_expiry_timestamp_seconds{namespace="shop",pair="ready",certificate="ponger"} 1795305600',
    );
    expect(lines).toContain(
      'pingpong_pair_certificate_renewal_timestamp_seconds{namespace="shop",pair="ready",certificate="ponger"} 1795276800',
    );
    expect(lines.filter((l) => l.includes('certificate="pinger"'))).toEqual([]);
    expect(lines.filter((l) => l.includes('pair="fresh"') && l.includes("certificate"))).toEqual([]);
  });

  it("give the success ratio when measured and the threshold always, defaulted as the CRD does", async () => {
    const lines = await scrape([ready, fresh]);
    expect(lines).toContain('pingpong_pair_ping_success_ratio{namespace="shop",pair="ready"} 0.985');
    expect(lines.filter((l) => l.startsWith("pingpong_pair_ping_success_ratio"))).toHaveLength(1);
    expect(lines).toContain('pingpong_pair_ping_success_threshold{namespace="shop",pair="ready"} 0.99');
    expect(lines).toContain('pingpong_pair_ping_success_threshold{namespace="shop",pair="fresh"} 0.95');
  });

  it("say whether a fire drill runs, for every pair", async () => {
    const drilling = pair("drilling", { status: { drill: { state: "Running", until: "t" } } });
    const ended = pair("ended", { status: { drill: { state: "Ended", until: "t" } } });
    const lines = (await scrape([drilling, ended, fresh])).filter((l) => l.startsWith("pingpong_pair_drill"));
    expect(lines).toEqual([
      'pingpong_pair_drill{namespace="shop",pair="drilling",drill="true"} 1',
      'pingpong_pair_drill{namespace="shop",pair="ended",drill="false"} 1',
      'pingpong_pair_drill{namespace="shop",pair="fresh",drill="false"} 1',
    ]);
  });

  it("drop a deleted pair's series at the next scrape", async () => {
    const pairs = [ready];
    const registry = new Registry();
    registerPairMetrics(registry, () => pairs);
    expect(await registry.metrics()).toContain('pair="ready"');
    pairs.pop();
    expect(await registry.metrics()).not.toContain('pair="ready"');
  });

  it("say whether this replica leads", async () => {
    let leading = false;
    const registry = new Registry();
    registerLeaderMetric(registry, () => leading);
    expect(await registry.metrics()).toContain("pingpong_operator_leader 0");
    leading = true;
    expect(await registry.metrics()).toContain("pingpong_operator_leader 1");
  });
});
