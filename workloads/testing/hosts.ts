/**
 * A hosts file for test processes: `node --import ./hosts.ts` with PINGPONG_TEST_HOSTS="name=ip,..."
 * makes those names resolve to those addresses, so a pinger on loopback reaches a ponger by the DNS
 * name its certificate was issued for (e.g. demo-ponger.ns.svc), the way a Service name resolves in
 * a cluster. Everything else resolves as usual.
 */
import dns from "node:dns";

const hosts = new Map(
  (process.env.PINGPONG_TEST_HOSTS ?? "")
    .split(",")
    .filter(Boolean)
    .map((entry) => entry.split("=") as [string, string]),
);

const lookup = dns.lookup.bind(dns);
type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address: string | dns.LookupAddress[],
  family?: number,
) => void;

function lookupWithHosts(hostname: string, options: unknown, callback?: LookupCallback): void {
  const done = (typeof options === "function" ? options : callback) as LookupCallback;
  const address = hosts.get(hostname);
  if (address === undefined) {
    (lookup as (h: string, o: unknown, c: LookupCallback) => void)(
      hostname,
      typeof options === "function" ? {} : options,
      done,
    );
    return;
  }
  const all = typeof options === "object" && options !== null && (options as { all?: boolean }).all === true;
  process.nextTick(() => (all ? done(null, [{ address, family: 4 }]) : done(null, address, 4)));
}

dns.lookup = lookupWithHosts as typeof dns.lookup;
