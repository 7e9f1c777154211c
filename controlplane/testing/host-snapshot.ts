/**
 * What a cluster could leave on the machine, read before it starts and after it stops, so a test can
 * say exactly what was left behind: processes, mounts, links, nftables tables, iptables chains, ipsets,
 * network namespaces, pod cgroups, fixed host paths and the sysctls the node must not change.
 */
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { host, processesMentioning } from "../host.ts";
import { fixedHostPaths, ipsets, iptablesChains } from "../node.ts";
import { nftTables } from "../node-network.ts";

// The node's own list, and where components would write if their flags were wrong.
const fixedPaths = [...fixedHostPaths, "/opt/containerd", "/usr/libexec/kubernetes"];

const sysctls = [
  "net/ipv4/ip_forward",
  "net/ipv4/conf/all/forwarding",
  "net/ipv4/conf/default/forwarding",
  "net/ipv4/conf/all/route_localnet",
  "net/bridge/bridge-nf-call-iptables",
  "net/netfilter/nf_conntrack_max",
  "net/netfilter/nf_conntrack_tcp_timeout_established",
];

export interface HostSnapshot {
  readonly mounts: string[];
  readonly links: string[];
  readonly tables: string[];
  /** "family table chain" of the iptables-nft tables (the kubelet's, kube-router's). */
  readonly iptablesChains: string[];
  readonly ipsets: string[];
  readonly netns: string[];
  readonly podCgroups: string[];
  readonly paths: string[];
  readonly sysctls: Record<string, string>;
  readonly shims: number;
}

/** What is on the machine now that was not in `before`, as a test asserts it: nothing. */
export async function expectNothingLeftSince(
  before: HostSnapshot,
  dir: string,
  expect: (actual: unknown) => { toEqual(expected: unknown): void },
): Promise<void> {
  const after = await hostSnapshot();
  expect(await processesMentioning(dir)).toEqual([]);
  expect(after.mounts.filter((m) => !before.mounts.includes(m))).toEqual([]);
  expect(after.links.filter((l) => !before.links.includes(l))).toEqual([]);
  expect(after.tables).toEqual(before.tables);
  expect(after.iptablesChains).toEqual(before.iptablesChains);
  expect(after.ipsets).toEqual(before.ipsets);
  expect(after.netns).toEqual(before.netns);
  expect(after.podCgroups).toEqual(before.podCgroups);
  expect(after.paths).toEqual(before.paths);
  expect(after.sysctls).toEqual(before.sysctls);
  expect(after.shims).toEqual(before.shims);
}

export async function hostSnapshot(): Promise<HostSnapshot> {
  const mountinfo = await readFile("/proc/self/mountinfo", "utf8");
  const links = JSON.parse(await host("ip", ["-j", "link", "show"])) as { ifname: string }[];
  const cgroups = await readdir("/sys/fs/cgroup").catch(() => []);
  return {
    mounts: [...new Set(mountinfo.split("\n").map((l) => l.split(" ")[4] ?? ""))].filter(Boolean).sort(),
    links: links.map((l) => l.ifname).sort(),
    tables: (await nftTables()).sort(),
    iptablesChains: (
      await Promise.all(
        ["ip", "ip6"].flatMap((family) =>
          ["filter", "nat", "mangle", "raw"].map(async (table) =>
            (await iptablesChains(family, table)).map((chain) => `${family} ${table} ${chain}`),
          ),
        ),
      )
    )
      .flat()
      .sort(),
    ipsets: (await ipsets()).sort(),
    netns: (await readdir("/run/netns").catch(() => [])).sort(),
    podCgroups: cgroups.filter((c) => existsSync(`/sys/fs/cgroup/${c}/kubepods`)).sort(),
    paths: fixedPaths.filter((p) => existsSync(p)),
    sysctls: Object.fromEntries(
      await Promise.all(
        sysctls.map(async (s): Promise<[string, string]> => [
          s,
          (await readFile(`/proc/sys/${s}`, "utf8").catch(() => "(none)")).trim(),
        ]),
      ),
    ),
    shims: (await processesMentioning("k8s.io")).filter((p) => p.argv[0]?.includes("containerd-shim")).length,
  };
}
