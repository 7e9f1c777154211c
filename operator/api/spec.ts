/**
 * From a PingPongPair as stored to the spec the operator acts on: defaults filled in, durations in
 * milliseconds, and the checks the CRD schema cannot express. A spec that fails them is an
 * InvalidSpecError: reported in status and as an event, never retried hot, and never a reason to touch
 * the children that already work.
 */
import { parseDuration } from "../../lib/duration.ts";
import { errorMessage } from "../../lib/logger.ts";
import type { ResolvedDrill } from "../pingpongpair/drill.ts";
import {
  type KeySize,
  type PingPongPair,
  type PingPongPairSpec,
  type Placement,
  placementFields,
  type Resources,
  specDefaults,
  type TlsMode,
} from "./types.ts";

export class InvalidSpecError extends Error {
  override readonly name = "InvalidSpecError";
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(problems.join("; "));
    this.problems = problems;
  }
}

export interface ResolvedSpec {
  readonly image: string;
  readonly ponger: {
    readonly replicas: number;
    readonly port: number;
    readonly resources: Resources;
    readonly placement: Placement;
  };
  readonly pinger: {
    readonly replicas: number;
    readonly placement: Placement;
    readonly intervalMs: number;
    readonly interval: string;
    readonly timeout: string;
    readonly timeoutMs: number;
    /** PingHealthy is True at or above this success ratio. */
    readonly successThreshold: number;
    readonly resources: Resources;
  };
  readonly tls: {
    readonly mode: TlsMode;
    readonly keySize: KeySize;
    readonly caDurationMs: number;
    readonly certDurationMs: number;
    readonly renewBeforeMs: number;
    readonly rotate: string;
    readonly rotateCA: string;
  };
  readonly networkPolicy: { readonly enabled: boolean };
  readonly drill: ResolvedDrill | undefined;
}

const binarySuffixes: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};
const decimalSuffixes: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  "": 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
};

/** A Kubernetes quantity ("100m", "1.5Gi", "2e3") as a number; undefined if it is not one. */
export function parseQuantity(value: string | number): number | undefined {
  if (typeof value === "number") return value;
  const match = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:([KMGTPE]i)|([numkMGTPE])|[eE]([+-]?\d+))?$/.exec(
    value.trim(),
  );
  if (!match) return undefined;
  const base = Number(match[1]);
  if (match[2]) return base * (binarySuffixes[match[2]] ?? Number.NaN);
  if (match[3]) return base * (decimalSuffixes[match[3]] ?? Number.NaN);
  if (match[4]) return base * 10 ** Number(match[4]);
  return base;
}

function checkResources(field: string, resources: Resources | undefined, problems: string[]): void {
  for (const [name, request] of Object.entries(resources?.requests ?? {})) {
    const limit = resources?.limits?.[name];
    if (limit === undefined) continue;
    const [r, l] = [parseQuantity(request), parseQuantity(limit)];
    if (r !== undefined && l !== undefined && r > l) {
      problems.push(
        `${field}.requests.${name} (${request}) must not exceed ${field}.limits.${name} (${limit})`,
      );
    }
  }
}

function duration(field: string, text: string, problems: string[]): number {
  try {
    return parseDuration(text);
  } catch (error) {
    problems.push(`${field}: ${errorMessage(error)}`);
    return 0;
  }
}

/** The placement fields a component's spec gives, and only those. */
function placementOf(component: Placement | undefined): Placement {
  if (!component) return {};
  return Object.fromEntries(
    placementFields.flatMap((field) => (component[field] === undefined ? [] : [[field, component[field]]])),
  );
}

/** spec.drill with its defaults and parsed times; the schema has checked its ratios and its shape. */
function resolveDrill(drill: PingPongPairSpec["drill"], problems: string[]): ResolvedDrill | undefined {
  if (!drill) return undefined;
  const until = new Date(drill.until);
  if (Number.isNaN(until.getTime())) {
    problems.push(
      `spec.drill.until (${drill.until}) is not a time: write it as RFC 3339, e.g. 2026-12-03T21:00:00Z`,
    );
  }
  return {
    abortRatio: drill.abortRatio ?? 0,
    abortStatus: drill.abortStatus ?? specDefaults.drill.abortStatus,
    delayRatio: drill.delay === undefined ? 0 : (drill.delayRatio ?? 0),
    delayMs: drill.delay === undefined ? 0 : duration("spec.drill.delay", drill.delay, problems),
    refuseClientCertificates: drill.refuseClientCertificates ?? false,
    until,
  };
}

export function resolveSpec(pair: PingPongPair, defaultImage: string): ResolvedSpec {
  const spec = pair.spec ?? {};
  const problems: string[] = [];
  const interval = spec.pinger?.interval ?? specDefaults.pinger.interval;
  const timeout = spec.pinger?.timeout ?? specDefaults.pinger.timeout;
  const certDuration = spec.tls?.certDuration ?? specDefaults.tls.certDuration;
  const caDuration = spec.tls?.caDuration ?? specDefaults.tls.caDuration;
  const certDurationMs = duration("spec.tls.certDuration", certDuration, problems);
  const renewBeforeMs =
    spec.tls?.renewBefore === undefined
      ? Math.floor(certDurationMs / 3)
      : duration("spec.tls.renewBefore", spec.tls.renewBefore, problems);
  if (spec.tls?.renewBefore !== undefined && renewBeforeMs >= certDurationMs) {
    problems.push(
      `spec.tls.renewBefore (${spec.tls.renewBefore}) must be shorter than spec.tls.certDuration (${certDuration})`,
    );
  }
  checkResources("spec.ponger.resources", spec.ponger?.resources, problems);
  checkResources("spec.pinger.resources", spec.pinger?.resources, problems);
  const resolved: ResolvedSpec = {
    image: spec.image ?? defaultImage,
    ponger: {
      replicas: spec.ponger?.replicas ?? specDefaults.ponger.replicas,
      port: spec.ponger?.port ?? specDefaults.ponger.port,
      resources: spec.ponger?.resources ?? {},
      placement: placementOf(spec.ponger),
    },
    pinger: {
      replicas: spec.pinger?.replicas ?? specDefaults.pinger.replicas,
      interval,
      intervalMs: duration("spec.pinger.interval", interval, problems),
      timeout,
      timeoutMs: duration("spec.pinger.timeout", timeout, problems),
      successThreshold: spec.pinger?.successThreshold ?? specDefaults.pinger.successThreshold,
      resources: spec.pinger?.resources ?? {},
      placement: placementOf(spec.pinger),
    },
    tls: {
      mode: spec.tls?.mode ?? specDefaults.tls.mode,
      keySize: spec.tls?.keySize ?? specDefaults.tls.keySize,
      caDurationMs: duration("spec.tls.caDuration", caDuration, problems),
      certDurationMs,
      renewBeforeMs,
      rotate: spec.tls?.rotate ?? "",
      rotateCA: spec.tls?.rotateCA ?? "",
    },
    networkPolicy: { enabled: spec.networkPolicy?.enabled ?? specDefaults.networkPolicy.enabled },
    drill: resolveDrill(spec.drill, problems),
  };
  if (problems.length > 0) throw new InvalidSpecError(problems);
  return resolved;
}
