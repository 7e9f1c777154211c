/**
 * UTC times as text, from epoch milliseconds, by integer arithmetic (H. Hinnant's civil-from-days).
 *
 * The workloads format every time they show this way rather than with Date objects: the first
 * `toISOString` or `toUTCString` in a process pages in about 0.8 MiB of the node binary (V8's date
 * machinery and ICU's time zone data, measured with /proc VmRSS), which a ponger or pinger pod would
 * otherwise hold for a timestamp per log line. Date.now() is free and used as is.
 */

interface Civil {
  readonly year: number;
  /** 1-12 */
  readonly month: number;
  readonly day: number;
  /** 0 Sunday - 6 Saturday */
  readonly weekday: number;
  readonly hour: number;
  readonly minute: number;
  readonly second: number;
  readonly millisecond: number;
}

const dayMs = 86_400_000;

function civil(ms: number): Civil {
  const days = Math.floor(ms / dayMs);
  let rest = ms - days * dayMs;
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const month = mp < 10 ? mp + 3 : mp - 9;
  const hour = Math.floor(rest / 3_600_000);
  rest -= hour * 3_600_000;
  const minute = Math.floor(rest / 60_000);
  rest -= minute * 60_000;
  const second = Math.floor(rest / 1000);
  return {
    year: yoe + era * 400 + (month <= 2 ? 1 : 0),
    month,
    day: doy - Math.floor((153 * mp + 2) / 5) + 1,
    weekday: (((days + 4) % 7) + 7) % 7,
    hour,
    minute,
    second,
    millisecond: rest - second * 1000,
  };
}

function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  return era * 146_097 + yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy - 719_468;
}

const pad = (value: number, width = 2) => String(value).padStart(width, "0");
const weekdays = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"] as const;
const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"] as const;

/** As Date#toISOString: `2026-11-21T19:58:30.123Z` (years 0-9999). */
export function isoTime(ms: number): string {
  const t = civil(ms);
  return (
    `${pad(t.year, 4)}-${pad(t.month)}-${pad(t.day)}T` +
    `${pad(t.hour)}:${pad(t.minute)}:${pad(t.second)}.${pad(t.millisecond, 3)}Z`
  );
}

/** As Date#toUTCString, the HTTP Date format (RFC 9110's IMF-fixdate): `Sat, 21 Nov 2026 19:58:30 GMT`. */
export function httpDate(ms: number): string {
  const t = civil(ms);
  return (
    `${weekdays[t.weekday] ?? ""}, ${pad(t.day)} ${months[t.month - 1] ?? ""} ${pad(t.year, 4)} ` +
    `${pad(t.hour)}:${pad(t.minute)}:${pad(t.second)} GMT`
  );
}

const certificateTime = /^([A-Z][a-z]{2}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2})(?:\.\d+)? (\d{4}) GMT$/;

/**
 * Epoch milliseconds of a certificate time as X509Certificate#validFrom/validTo give it (OpenSSL's
 * `Nov 21 19:58:30 2026 GMT`); other forms fall back to Date.parse.
 */
export function certificateTimeMs(text: string): number {
  const match = certificateTime.exec(text);
  const month = match ? months.indexOf(match[1] as (typeof months)[number]) + 1 : 0;
  if (!match || month === 0) return Date.parse(text);
  const [, , day, hour, minute, second, year] = match.map(Number);
  return (
    daysFromCivil(year ?? 0, month, day ?? 0) * dayMs +
    ((hour ?? 0) * 3600 + (minute ?? 0) * 60 + (second ?? 0)) * 1000
  );
}
