/**
 * What the pods' /status readings (health/pod-status-reader.ts) mean to a reconcile: the TLS material
 * each pod has loaded, for the CA rotation, and each pinger's ping window, for ping health. Pure.
 */
import type { PingerReading, PingerReport } from "../health/ping-health.ts";
import { loadedTls, type PairReadings, type PodReading } from "../health/pod-status-reader.ts";
import type { PodObservation } from "./ca-rotation.ts";

/** What a pod reported having loaded, as the CA rotation needs it. */
export function observation(reading: PodReading): PodObservation {
  const base = { pod: reading.pod, component: reading.component };
  if (reading.error !== undefined) return { ...base, error: reading.error };
  const tls = loadedTls(reading);
  if (!tls) return { ...base, error: "its /status reports no TLS material" };
  return {
    ...base,
    trust: tls.trustBundle.map((c) => c.sha256Fingerprint),
    leaf: tls.certificate?.sha256Fingerprint,
  };
}

/** A pinger pod's reading as health needs it; a /status without a ping window is an error. */
export function pingerReading(reading: PodReading): PingerReading {
  const window = reading.status?.window;
  if (reading.error !== undefined || typeof window !== "object" || window === null) {
    return { pod: reading.pod, at: reading.at, error: reading.error ?? "its /status has no ping window" };
  }
  return { pod: reading.pod, at: reading.at, report: reading.status as unknown as PingerReport };
}

/** The pods as the certificate plan sees them: what each loaded, and how many run. */
export function podObservations(readings: PairReadings): {
  observations: PodObservation[];
  running: number;
} {
  return {
    observations: readings.pods.map(observation),
    running: readings.running.ponger + readings.running.pinger,
  };
}

export function pingerReadings(readings: PairReadings): PingerReading[] {
  return readings.pods.filter((r) => r.component === "pinger").map(pingerReading);
}
