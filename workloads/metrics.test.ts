import * as prom from "prom-client";
import { describe, expect, it } from "vitest";
import { metricValue } from "./testing/tls-client.ts";
import { MetricsRegistry } from "./metrics.ts";

/** The lines of a text exposition, without prom-client's blank line between families. */
const lines = (text: string) => text.split("\n").filter((line) => line !== "");

describe("the workloads' metrics", () => {
  it("render exactly what prom-client renders for the same counters and histogram", async () => {
    const ours = new MetricsRegistry();
    const theirs = new prom.Registry();
    const buckets = [0.001, 0.01, 0.1, 1];

    const sent = ours.counter("ping_requests_sent_total", "Pings sent.");
    const sentRef = new prom.Counter({
      name: "ping_requests_sent_total",
      help: "Pings sent.",
      registers: [theirs],
    });
    const failed = ours.counter("ping_failures_total", 'Failures,\nby "reason" \\ kind.', ["reason"]);
    const failedRef = new prom.Counter({
      name: "ping_failures_total",
      help: 'Failures,\nby "reason" \\ kind.',
      labelNames: ["reason"],
      registers: [theirs],
    });
    const rtt = ours.histogram("ping_rtt_seconds", "RTT.", buckets);
    const rttRef = new prom.Histogram({
      name: "ping_rtt_seconds",
      help: "RTT.",
      buckets,
      registers: [theirs],
    });

    for (let i = 0; i < 3; i++) {
      sent.inc();
      sentRef.inc();
    }
    sent.inc(2);
    sentRef.inc(2);
    for (const reason of ["timeout", "tls", "timeout", 'odd "pod"\\\nname']) {
      failed.inc({ reason });
      failedRef.inc({ reason });
    }
    for (const value of [0.0005, 0.001, 0.05, 0.5, 3]) {
      rtt.observe(value);
      rttRef.observe(value);
    }
    expect(lines(ours.metrics())).toEqual(lines(await theirs.metrics()));
    expect(ours.contentType).toBe(theirs.contentType);
  });

  it("exports the process metrics under prom-client's default names", () => {
    const text = new MetricsRegistry().withProcessMetrics().metrics();
    const rss = metricValue(text, "process_resident_memory_bytes") ?? 0;
    expect(rss).toBeGreaterThan(10 * 2 ** 20);
    expect(metricValue(text, "process_cpu_seconds_total")).toBeGreaterThan(0);
    const start = metricValue(text, "process_start_time_seconds") ?? 0;
    expect(Math.abs(start - (Date.now() / 1000 - process.uptime()))).toBeLessThan(2);
    for (const name of [
      "nodejs_heap_size_used_bytes",
      "nodejs_heap_size_total_bytes",
      "nodejs_external_memory_bytes",
    ]) {
      expect(metricValue(text, name)).toBeGreaterThan(0);
    }
    expect(text).toContain("# TYPE process_cpu_seconds_total counter\n");
  });
});
