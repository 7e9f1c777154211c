/**
 * Go-style durations ("1s", "500ms", "1h30m"), the format Kubernetes users already know from
 * metav1.Duration. Only non-negative values: every duration here is an interval or a lifetime.
 */

const unitMs: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
};

const durationPattern = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/;
const partPattern = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;

export class DurationError extends Error {
  override readonly name = "DurationError";
}

/** Parses "1h30m" to milliseconds. Throws DurationError with an example of the accepted form. */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  if (!durationPattern.test(trimmed)) {
    throw new DurationError(
      `"${text}" is not a duration: use a number with a unit ms, s, m or h, e.g. "500ms", "2s", "24h", "1h30m"`,
    );
  }
  let total = 0;
  for (const [, amount, unit] of trimmed.matchAll(partPattern)) {
    total += Number(amount) * (unitMs[unit ?? ""] ?? Number.NaN);
  }
  if (!Number.isFinite(total)) {
    throw new DurationError(`"${text}" is too large a duration`);
  }
  return Math.round(total);
}

/** Formats milliseconds the way Go prints durations, without fractional hours: 90000 -> "1m30s". */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  const parts: string[] = [];
  let rest = Math.round(ms);
  for (const [unit, size] of [
    ["h", 3_600_000],
    ["m", 60_000],
    ["s", 1_000],
    ["ms", 1],
  ] as const) {
    const count = Math.floor(rest / size);
    if (count > 0) {
      parts.push(`${count}${unit}`);
      rest -= count * size;
    }
  }
  return parts.join("");
}
