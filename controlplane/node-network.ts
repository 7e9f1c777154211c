/**
 * The local node's network: one bridge that holds the pods, the node's address and the pods'
 * gateway, and one nftables table of our own that keeps pod traffic on this machine. No NAT, no
 * masquerade, the global ip_forward untouched: forwarding is switched on for the bridge alone, and
 * the table lets pods reach pods (Services are pods after kube-proxy's DNAT) and the API server's
 * port on the host, nothing else; nothing from another interface reaches the bridge.
 */
import { readFile, writeFile } from "node:fs/promises";
import { host, HostCommandError } from "./host.ts";

export interface NodeNetwork {
  /** The bridge the pods' veths attach to; also holds nodeIp and gateway. */
  readonly bridge: string;
  /** All pods of the cluster (kube-proxy's and the controller manager's cluster CIDR). */
  readonly clusterCidr: string;
  /** This node's pods: the CNI bridge plugin's subnet. */
  readonly podCidr: string;
  /** The pods' default gateway, on the bridge. */
  readonly gateway: string;
  /** The node's InternalIP, where the API server and kubelet listen: on the bridge, not on eth0. */
  readonly nodeIp: string;
  readonly serviceCidr: string;
  /** The ClusterIP of the `kubernetes` Service (the first address of serviceCidr). */
  readonly apiServiceIp: string;
  /** The ClusterIP of CoreDNS's Service, named by the kubelet's clusterDNS. */
  readonly dnsServiceIp: string;
  /** Our nftables table (family inet). */
  readonly table: string;
}

/**
 * Ranges that collide with nothing this machine uses (checked at start). One node per machine: a
 * second cluster is refused while the bridge exists (see ownerOfBridge).
 */
export const defaultNodeNetwork: NodeNetwork = {
  bridge: "pingpong0",
  clusterCidr: "10.245.0.0/16",
  podCidr: "10.245.0.0/24",
  gateway: "10.245.0.1",
  nodeIp: "10.250.0.1",
  serviceCidr: "10.97.0.0/16",
  apiServiceIp: "10.97.0.1",
  dnsServiceIp: "10.97.0.10",
  table: "pingpong-node",
};

function ipToNumber(ip: string): number {
  const parts = ip.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255))
    throw new Error(`"${ip}" is not an IPv4 address`);
  return parts.reduce((n, p) => n * 256 + p, 0);
}

/** [first, last] addresses of a CIDR (a bare address is a /32). */
export function cidrRange(cidr: string): [number, number] {
  const [ip = "", bits = "32"] = cidr.split("/");
  const prefix = Number(bits);
  const size = 2 ** (32 - prefix);
  const first = Math.floor(ipToNumber(ip) / size) * size;
  return [first, first + size - 1];
}

export function cidrsOverlap(a: string, b: string): boolean {
  const [aFirst, aLast] = cidrRange(a);
  const [bFirst, bLast] = cidrRange(b);
  return aFirst <= bLast && bFirst <= aLast;
}

/** What the machine already uses: routes and addresses (`ip -j`), and resolv.conf's nameservers. */
export interface HostRanges {
  readonly routes: readonly { dst: string; dev?: string }[];
  readonly addresses: readonly { ifname: string; local: string; prefixlen: number }[];
  readonly nameservers: readonly string[];
}

/** Every way the node's ranges would collide with the machine's, as sentences; empty when none. */
export function rangeCollisions(network: NodeNetwork, ranges: HostRanges): string[] {
  const ours = [
    ["cluster (pod) range", network.clusterCidr],
    ["service range", network.serviceCidr],
    ["node address", `${network.nodeIp}/32`],
  ] as const;
  const theirs: [string, string][] = [
    ...ranges.routes
      .filter((r) => r.dst !== "default" && r.dev !== network.bridge)
      .map((r): [string, string] => [`route ${r.dst}${r.dev ? ` dev ${r.dev}` : ""}`, r.dst]),
    ...ranges.addresses
      .filter((a) => a.ifname !== network.bridge && !a.local.startsWith("127."))
      .map((a): [string, string] => [
        `address ${a.local}/${a.prefixlen} on ${a.ifname}`,
        `${a.local}/${a.prefixlen}`,
      ]),
    ...ranges.nameservers
      .filter((n) => /^\d+\.\d+\.\d+\.\d+$/.test(n))
      .map((n): [string, string] => [`nameserver ${n} in /etc/resolv.conf`, `${n}/32`]),
  ];
  const collisions: string[] = [];
  for (const [ourName, ourCidr] of ours)
    for (const [theirName, theirCidr] of theirs)
      if (cidrsOverlap(ourCidr, theirCidr))
        collisions.push(`the node's ${ourName} ${ourCidr} overlaps the ${theirName}`);
  return collisions;
}

/** The nftables script that creates our table (applied with `nft -f -`, atomically). */
export function nodeRuleset(network: NodeNetwork, apiServerPort: number): string {
  const bridge = `"${network.bridge}"`;
  return `table inet ${network.table} {
  # Forwarded traffic: pods to pods on the bridge, nothing else in or out of it.
  chain forward {
    type filter hook forward priority filter - 10; policy accept;
    iifname ${bridge} oifname ${bridge} ip saddr ${network.clusterCidr} ip daddr ${network.clusterCidr} accept
    iifname ${bridge} counter drop comment "pod traffic leaving the bridge"
    oifname ${bridge} counter drop comment "traffic into the bridge from elsewhere"
  }
  # Traffic to the host: from pods only the API server (and replies to the host's own connections,
  # e.g. probes); the node's addresses only from this machine.
  chain input {
    type filter hook input priority filter - 10; policy accept;
    iifname ${bridge} ct state established,related accept
    iifname ${bridge} ip daddr ${network.nodeIp} tcp dport ${apiServerPort} accept
    iifname ${bridge} counter drop comment "pods reaching the host"
    iifname != { "lo", ${bridge} } ip daddr { ${network.nodeIp}, ${network.clusterCidr} } counter drop comment "other interfaces reaching the node"
  }
}
`;
}

/** The process and cluster folder recorded on the bridge (its ifalias), so a second cluster can say whose it is. */
export interface BridgeOwner {
  readonly pid: number;
  readonly dir: string;
}

const aliasPattern = /^pingpong-node pid=(\d+) dir=(.+)$/;

/** The owner of the bridge, `null` when there is no bridge, `undefined` for a bridge we did not make. */
export async function ownerOfBridge(network: NodeNetwork): Promise<BridgeOwner | null | undefined> {
  let links: { ifalias?: string }[];
  try {
    links = JSON.parse(await host("ip", ["-j", "-d", "link", "show", "dev", network.bridge])) as {
      ifalias?: string;
    }[];
  } catch (error) {
    if (error instanceof HostCommandError && /does not exist/.test(error.stderr)) return null;
    throw error;
  }
  const match = aliasPattern.exec(links[0]?.ifalias ?? "");
  return match ? { pid: Number(match[1]), dir: match[2] ?? "" } : undefined;
}

export async function hostRanges(): Promise<HostRanges> {
  const [routes, links, resolv] = await Promise.all([
    host("ip", ["-j", "-4", "route", "show", "table", "all"]),
    host("ip", ["-j", "-4", "addr", "show"]),
    readFile("/etc/resolv.conf", "utf8").catch(() => ""),
  ]);
  return {
    routes: (JSON.parse(routes) as { dst: string; dev?: string; type?: string }[]).filter(
      (r) => r.type === undefined || r.type === "unicast",
    ),
    addresses: (
      JSON.parse(links) as { ifname: string; addr_info: { local: string; prefixlen: number }[] }[]
    ).flatMap((link) =>
      link.addr_info.map((a) => ({ ifname: link.ifname, local: a.local, prefixlen: a.prefixlen })),
    ),
    nameservers: [...resolv.matchAll(/^nameserver\s+(\S+)/gm)].map((m) => m[1] ?? ""),
  };
}

/** Creates the bridge (owned by this process and `dir`) with the node's addresses, forwarding on it alone. */
export async function createBridge(network: NodeNetwork, dir: string): Promise<void> {
  const [, gatewayBits] = network.podCidr.split("/");
  await host("ip", ["link", "add", network.bridge, "type", "bridge"]);
  await host("ip", ["link", "set", network.bridge, "alias", `pingpong-node pid=${process.pid} dir=${dir}`]);
  // The pods are IPv4 only; no link-local IPv6 on the bridge either.
  await writeFile(`/proc/sys/net/ipv6/conf/${network.bridge}/disable_ipv6`, "1").catch(() => undefined);
  await host("ip", ["addr", "add", `${network.gateway}/${gatewayBits}`, "dev", network.bridge]);
  await host("ip", ["addr", "add", `${network.nodeIp}/32`, "dev", network.bridge]);
  await host("ip", ["link", "set", network.bridge, "up"]);
  await writeFile(`/proc/sys/net/ipv4/conf/${network.bridge}/forwarding`, "1");
}

/** Adds our nftables table, once the API server's port is known. */
export async function applyRuleset(network: NodeNetwork, apiServerPort: number): Promise<void> {
  await deleteTable("inet", network.table);
  await host("nft", ["-f", "-"], nodeRuleset(network, apiServerPort));
}

export async function deleteTable(family: string, table: string): Promise<void> {
  await host("nft", ["delete", "table", family, table]).catch((error: unknown) => {
    if (!(error instanceof HostCommandError && /No such file or directory/.test(error.stderr))) throw error;
  });
}

/** The nftables tables on the machine, as "family name". */
export async function nftTables(): Promise<string[]> {
  const listing = JSON.parse(await host("nft", ["-j", "list", "tables"])) as {
    nftables: { table?: { family: string; name: string } }[];
  };
  return listing.nftables.flatMap((item) => (item.table ? [`${item.table.family} ${item.table.name}`] : []));
}

export async function deleteBridge(network: NodeNetwork): Promise<void> {
  await host("ip", ["link", "del", network.bridge]).catch((error: unknown) => {
    if (!(error instanceof HostCommandError && /Cannot find device|does not exist/.test(error.stderr)))
      throw error;
  });
}
