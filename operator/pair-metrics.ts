/**
 * What each pair's status says, as metrics, in the manner of kube-state-metrics: read from the
 * operator's cache when Prometheus scrapes, so they cost nothing between scrapes and a deleted pair's
 * series disappear with it. The alerts in config/prometheus are written against these names.
 */
import { Gauge, type Registry } from "prom-client";
import { type PingPongPair, specDefaults } from "./api/types.ts";

const pairLabels = ["namespace", "pair"] as const;

function labelsOf(pair: PingPongPair) {
  return { namespace: pair.metadata?.namespace ?? "", pair: pair.metadata?.name ?? "" };
}

const seconds = (time: string | undefined): number | undefined => {
  if (!time) return undefined;
  const ms = Date.parse(time);
  return Number.isNaN(ms) ? undefined : ms / 1000;
};

/** Registers the per-pair gauges; `pairs` returns the cached pairs (empty on a standby). */
// eslint-disable-next-line max-lines-per-function -- one gauge per status field, each a few lines; together they are the table the dashboard reads
export function registerPairMetrics(registry: Registry, pairs: () => readonly PingPongPair[]): void {
  new Gauge({
    name: "pingpong_pair_status_condition",
    help: "Each condition of each pair: 1 on the series with its current status and reason.",
    labelNames: [...pairLabels, "type", "status", "reason"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const pair of pairs()) {
        for (const { type, status, reason } of pair.status?.conditions ?? []) {
          this.set({ ...labelsOf(pair), type, status, reason }, 1);
        }
      }
    },
  });

  const certificates = (pair: PingPongPair) => {
    const { ca, certificates: leaves } = pair.status ?? {};
    return [
      ["ca", ca],
      ["ponger", leaves?.ponger],
      ["pinger", leaves?.pinger],
    ] as const;
  };
  for (const [field, name, help] of [
    [
      "notAfter",
      "pingpong_pair_certificate_expiry_timestamp_seconds",
      "When each certificate expires (Unix time).",
    ],
    [
      "renewalTime",
      "pingpong_pair_certificate_renewal_timestamp_seconds",
      "When the operator renews each certificate (Unix time); past it, a renewal is due.",
    ],
  ] as const) {
    new Gauge({
      name,
      help,
      labelNames: [...pairLabels, "certificate"] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const pair of pairs()) {
          for (const [certificate, status] of certificates(pair)) {
            const value = seconds(status?.[field]);
            if (value !== undefined) this.set({ ...labelsOf(pair), certificate }, value);
          }
        }
      },
    });
  }

  new Gauge({
    name: "pingpong_pair_ping_success_ratio",
    help: "Share of the pair's recent pings answered with a pong, as its status reports it.",
    labelNames: pairLabels,
    registers: [registry],
    collect() {
      this.reset();
      for (const pair of pairs()) {
        const ratio = pair.status?.ping?.successRatio;
        if (ratio !== undefined) this.set(labelsOf(pair), ratio);
      }
    },
  });

  new Gauge({
    name: "pingpong_pair_drill",
    help: 'Always 1 per pair; drill="true" while a fire drill runs (status.drill.state Running), for the alerts to say so.',
    labelNames: [...pairLabels, "drill"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const pair of pairs()) {
        this.set({ ...labelsOf(pair), drill: String(pair.status?.drill?.state === "Running") }, 1);
      }
    },
  });

  new Gauge({
    name: "pingpong_pair_ping_success_threshold",
    help: "The success ratio below which the pair is not PingHealthy (spec.pinger.successThreshold).",
    labelNames: pairLabels,
    registers: [registry],
    collect() {
      this.reset();
      for (const pair of pairs()) {
        const threshold = pair.spec?.pinger?.successThreshold ?? specDefaults.pinger.successThreshold;
        this.set(labelsOf(pair), threshold);
      }
    },
  });
}

/** 1 while this replica leads (or runs without leader election), 0 while it stands by. */
export function registerLeaderMetric(registry: Registry, isLeader: () => boolean): void {
  new Gauge({
    name: "pingpong_operator_leader",
    help: "1 while this operator replica leads and reconciles, 0 while it stands by.",
    registers: [registry],
    collect() {
      this.set(isLeader() ? 1 : 0);
    },
  });
}
