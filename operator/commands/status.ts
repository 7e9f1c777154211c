/**
 * `pingpong status PAIR`: one PingPongPair as a person wants to see it — its conditions and why,
 * each certificate with its expiry and renewal as countdowns, the pods and what they run, ping
 * health, pongs per ponger pod, and the pair's recent Events. `-o json` gives the same for scripts.
 * Read-only: the pair, its pods and its Events, through the API server.
 */
import type { CoreV1Event, KubernetesObject, V1Pod } from "@kubernetes/client-node";
import type { PingPongPair } from "../api/types.ts";
import { metricsPort } from "../pingpongpair/children.ts";
import { selectorString } from "../pingpongpair/names.ts";
import type { KubeClient } from "../runtime/kube-client.ts";
import { resources } from "../runtime/resources.ts";
import { alignColumns } from "../../lib/text-table.ts";

export interface PairReport {
  readonly namespace: string;
  readonly name: string;
  readonly generation: number;
  readonly observedGeneration: number | null;
  readonly conditions: { type: string; status: string; reason: string; message: string; since: string }[];
  readonly certificates: {
    name: "ca" | "ponger" | "pinger";
    serial: string | null;
    notAfter: string | null;
    renewalTime: string | null;
  }[];
  readonly pods: {
    name: string;
    component: "ponger" | "pinger";
    phase: string;
    ready: boolean;
    restarts: number;
    /** What the pod's /status says it has loaded; null when the pod is not running. */
    loaded: LoadedCertificates | { unreadable: string } | null;
  }[];
  readonly ping: NonNullable<PingPongPair["status"]>["ping"] | null;
  /** The fire drill as the operator judged it, when spec.drill is set. */
  readonly drill: NonNullable<PingPongPair["status"]>["drill"] | null;
  readonly events: { time: string; type: string; reason: string; message: string; count: number }[];
}

export interface LoadedCertificates {
  readonly certificateSerial: string | null;
  readonly trustedCAs: number;
  /** The serial is the one status.certificates names for the pod's role. */
  readonly current: boolean;
  /** The pod refused the latest files (it says why on its /status). */
  readonly lastError: string | null;
}

export class PairNotFoundError extends Error {
  override readonly name = "UsageError";
}

/** What a workload pod reports having loaded, read from its /status through the API server. */
async function loadedBy(
  client: KubeClient,
  namespace: string,
  pod: string,
  currentSerial: string | undefined,
): Promise<LoadedCertificates | { unreadable: string }> {
  try {
    const reported = await client.getFromPod<{
      tls?: {
        certificate?: { serial?: string } | null;
        trustBundle?: unknown[];
        lastError?: string | null;
      } | null;
    }>(namespace, pod, metricsPort, "/status");
    const serial = reported.tls?.certificate?.serial ?? null;
    return {
      certificateSerial: serial,
      trustedCAs: reported.tls?.trustBundle?.length ?? 0,
      current: serial !== null && serial === currentSerial,
      lastError: reported.tls?.lastError ?? null,
    };
  } catch (error) {
    return { unreadable: error instanceof Error ? error.message : String(error) };
  }
}

/** Everything `status` shows, read from the API server. */
// eslint-disable-next-line max-lines-per-function -- the reads `pingpong status` makes, one after the other, each with its own error
export async function readPairReport(
  client: KubeClient,
  namespace: string,
  name: string,
): Promise<PairReport> {
  const pair = await client.get<PingPongPair>(resources.pingPongPair, namespace, name);
  if (!pair) {
    throw new PairNotFoundError(
      `no PingPongPair "${name}" in namespace "${namespace}"; list them with: kubectl get pingpongpairs -A`,
    );
  }
  const [ponger, pinger, events] = await Promise.all([
    client.list<V1Pod & KubernetesObject>(resources.pod, namespace, selectorString(name, "ponger")),
    client.list<V1Pod & KubernetesObject>(resources.pod, namespace, selectorString(name, "pinger")),
    client.list<CoreV1Event & KubernetesObject>(resources.event, namespace),
  ]);
  const status = pair.status ?? {};
  const pod = (component: "ponger" | "pinger") => async (p: V1Pod) => ({
    name: p.metadata?.name ?? "",
    component,
    phase: p.status?.phase ?? "Unknown",
    ready: p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false,
    restarts: (p.status?.containerStatuses ?? []).reduce((n, c) => n + c.restartCount, 0),
    loaded:
      p.status?.phase === "Running"
        ? await loadedBy(client, namespace, p.metadata?.name ?? "", status.certificates?.[component]?.serial)
        : null,
  });
  const eventTime = (e: CoreV1Event) =>
    String(e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata.creationTimestamp ?? "");
  return {
    namespace,
    name,
    generation: pair.metadata?.generation ?? 0,
    observedGeneration: status.observedGeneration ?? null,
    conditions: (status.conditions ?? []).map((c) => ({
      type: c.type,
      status: c.status,
      reason: c.reason,
      message: c.message,
      since: c.lastTransitionTime,
    })),
    certificates: [
      { name: "ca" as const, ...status.ca },
      { name: "ponger" as const, ...status.certificates?.ponger },
      { name: "pinger" as const, ...status.certificates?.pinger },
    ].map((c) => ({
      name: c.name,
      serial: c.serial ?? null,
      notAfter: c.notAfter ?? null,
      renewalTime: c.renewalTime ?? null,
    })),
    pods: await Promise.all([...ponger.items.map(pod("ponger")), ...pinger.items.map(pod("pinger"))]),
    ping: status.ping ?? null,
    drill: status.drill ?? null,
    events: events.items
      .filter((e) => e.involvedObject.kind === "PingPongPair" && e.involvedObject.name === name)
      .sort((a, b) => eventTime(a).localeCompare(eventTime(b)))
      .slice(-10)
      .map((e) => ({
        time: eventTime(e),
        type: e.type ?? "",
        reason: e.reason ?? "",
        message: e.message ?? "",
        count: e.count ?? 1,
      })),
  };
}

/** "in 29d 23h", "3m 5s ago": the larger two units of the distance from now. */
export function countdown(iso: string | null, now: Date): string {
  if (!iso) return "-";
  const ms = Date.parse(iso) - now.getTime();
  if (Number.isNaN(ms)) return "-";
  const seconds = Math.round(Math.abs(ms) / 1000);
  const units: [string, number][] = [
    ["d", 86_400],
    ["h", 3_600],
    ["m", 60],
    ["s", 1],
  ];
  const parts: string[] = [];
  let rest = seconds;
  for (const [unit, size] of units) {
    const value = Math.floor(rest / size);
    rest -= value * size;
    if (parts.length > 0 || value > 0) parts.push(`${value}${unit}`);
    if (parts.length === 2) break;
  }
  const text = parts.length === 0 ? "0s" : parts.join(" ");
  return ms >= 0 ? `in ${text}` : `${text} ago`;
}

const table = (rows: readonly (readonly string[])[]) => alignColumns(rows, { gap: 2, indent: "  " });

function describeLoaded(loaded: PairReport["pods"][number]["loaded"]): string {
  if (loaded === null) return "";
  if ("unreadable" in loaded) return `/status unreadable: ${loaded.unreadable}`;
  const leaf = `leaf ${loaded.certificateSerial?.slice(0, 16) ?? "-"} (${loaded.current ? "current" : "not the current one"})`;
  const trust = `trusts ${loaded.trustedCAs} CA${loaded.trustedCAs === 1 ? "" : "s"}`;
  return `${leaf}, ${trust}${loaded.lastError ? `; refused new files: ${loaded.lastError}` : ""}`;
}

/** The plain-text view. */
// eslint-disable-next-line max-lines-per-function -- the report top to bottom, one section per block, in the order it prints
export function formatPairReport(report: PairReport, now: Date): string {
  const lines: string[] = [];
  const current = report.observedGeneration === report.generation;
  lines.push(
    `PingPongPair ${report.namespace}/${report.name}  generation ${report.generation}, ` +
      (current ? "seen by the operator" : `operator has seen ${report.observedGeneration ?? "none yet"}`),
    "",
    "Conditions",
    report.conditions.length === 0
      ? "  none yet: is the operator running?"
      : table(
          report.conditions.map((c) => [
            c.type,
            c.status,
            c.reason,
            `(${countdown(c.since, now)})`,
            c.message,
          ]),
        ),
    "",
    "Certificates",
    table([
      ["", "SERIAL", "EXPIRES", "", "RENEWS"],
      ...report.certificates.map((c) => [
        c.name,
        c.serial ? c.serial.slice(0, 16) : "-",
        c.notAfter ?? "-",
        c.notAfter ? `(${countdown(c.notAfter, now)})` : "",
        c.renewalTime ? `${c.renewalTime} (${countdown(c.renewalTime, now)})` : "-",
      ]),
    ]),
    "",
    "Pods",
    report.pods.length === 0
      ? "  none"
      : table(
          report.pods.map((p) => [
            p.name,
            p.component,
            p.phase,
            p.ready ? "ready" : "not ready",
            `${p.restarts} restarts`,
            describeLoaded(p.loaded),
          ]),
        ),
    "",
    "Ping",
  );
  const ping = report.ping;
  if (!ping) lines.push("  not measured yet");
  else {
    lines.push(
      `  success ${ping.success ?? "-"} (${ping.succeeded ?? 0} of ${ping.sent ?? 0} in the last ${ping.windowSeconds ?? 60} s), ` +
        `P50 ${ping.latencyP50Ms ?? "-"} ms, P99 ${ping.latencyP99Ms ?? "-"} ms, last pong ${countdown(ping.lastPongTime ?? null, now)}`,
    );
    const failures = Object.entries(ping.failuresByReason ?? {});
    if (failures.length > 0) lines.push(`  failures: ${failures.map(([r, n]) => `${r} ${n}`).join(", ")}`);
    const pongs = Object.entries(ping.pongsByPod ?? {});
    if (pongs.length > 0)
      lines.push(`  pongs by ponger pod: ${pongs.map(([p, n]) => `${p} ${n}`).join(", ")}`);
    if (ping.pathsSummary) lines.push(`  paths: ${ping.pathsSummary}`);
    for (const path of ping.paths ?? [])
      lines.push(`    ${path.pingerNode ?? "?"} -> ${path.pongerNode ?? "?"}: ${path.pongs ?? 0} pongs`);
    const failedByNode = Object.entries(ping.failuresByPingerNode ?? {});
    if (failedByNode.length > 0)
      lines.push(`  failed pings by pinger node: ${failedByNode.map(([n, c]) => `${n} ${c}`).join(", ")}`);
  }
  const drill = report.drill;
  if (drill) {
    lines.push("", "Fire drill", `  ${drill.state ?? "?"}: ${drill.message ?? ""}`);
    if (drill.state === "Running") {
      lines.push(
        `  ${drill.injectingPongers ?? 0} ponger pod(s) inject it; ends ${countdown(drill.until ?? null, now)}`,
      );
    }
  }
  lines.push("", "Events");
  lines.push(
    report.events.length === 0
      ? "  none"
      : table(
          report.events.map((e) => [
            countdown(e.time, now),
            e.type,
            e.reason,
            e.count > 1 ? `(x${e.count}) ${e.message}` : e.message,
          ]),
        ),
  );
  return `${lines.join("\n")}\n`;
}
