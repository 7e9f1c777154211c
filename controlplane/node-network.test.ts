import { describe, expect, it } from "vitest";
import {
  cidrRange,
  cidrsOverlap,
  defaultNodeNetwork,
  type HostRanges,
  nodeRuleset,
  rangeCollisions,
} from "./node-network.ts";

const network = defaultNodeNetwork;

/** What this kind of machine looks like: eth0 on a /24, a default route, a resolver elsewhere. */
const machine: HostRanges = {
  routes: [
    { dst: "default", dev: "eth0" },
    { dst: "192.0.2.0/24", dev: "eth0" },
  ],
  addresses: [
    { ifname: "lo", local: "127.0.0.1", prefixlen: 8 },
    { ifname: "eth0", local: "192.0.2.2", prefixlen: 24 },
  ],
  nameservers: ["10.255.255.53"],
};

describe("CIDR arithmetic", () => {
  it.each([
    ["10.245.0.0/16", "10.245.3.7/32", true],
    ["10.245.0.0/16", "10.246.0.0/16", false],
    ["10.0.0.0/8", "10.97.0.0/16", true],
    ["10.97.0.0/16", "10.96.255.255", false],
    ["0.0.0.0/0", "192.0.2.1", true],
  ])("%s and %s overlap: %s", (a, b, overlap) => {
    expect(cidrsOverlap(a, b)).toBe(overlap);
    expect(cidrsOverlap(b, a)).toBe(overlap);
  });

  it("normalises a CIDR to its network", () => {
    expect(cidrRange("10.245.0.1/24")).toEqual(cidrRange("10.245.0.0/24"));
  });

  it("refuses what is not an IPv4 address", () => {
    expect(() => cidrRange("10.245.0/16")).toThrow(/not an IPv4 address/);
  });
});

describe("the node's ranges against the machine's", () => {
  it("collide with nothing on a machine like this one", () => {
    expect(rangeCollisions(network, machine)).toEqual([]);
  });

  it("name each collision: a route, an address, a nameserver", () => {
    const busy: HostRanges = {
      routes: [...machine.routes, { dst: "10.0.0.0/8", dev: "wg0" }],
      addresses: [...machine.addresses, { ifname: "docker0", local: "10.97.0.1", prefixlen: 16 }],
      nameservers: ["10.245.0.53"],
    };
    const collisions = rangeCollisions(network, busy);
    expect(collisions).toContain(
      "the node's cluster (pod) range 10.245.0.0/16 overlaps the route 10.0.0.0/8 dev wg0",
    );
    expect(collisions).toContain(
      "the node's service range 10.97.0.0/16 overlaps the address 10.97.0.1/16 on docker0",
    );
    expect(collisions).toContain(
      "the node's cluster (pod) range 10.245.0.0/16 overlaps the nameserver 10.245.0.53 in /etc/resolv.conf",
    );
  });

  it("ignore the node's own bridge and the default route", () => {
    const running: HostRanges = {
      ...machine,
      routes: [...machine.routes, { dst: "10.245.0.0/24", dev: network.bridge }],
      addresses: [...machine.addresses, { ifname: network.bridge, local: network.nodeIp, prefixlen: 32 }],
    };
    expect(rangeCollisions(network, running)).toEqual([]);
  });
});

describe("the node's nftables table", () => {
  const rules = nodeRuleset(network, 34567);

  it("lets pods reach only pods on the bridge, and drops everything else leaving it", () => {
    expect(rules).toContain(
      'iifname "pingpong0" oifname "pingpong0" ip saddr 10.245.0.0/16 ip daddr 10.245.0.0/16 accept',
    );
    expect(rules).toMatch(/iifname "pingpong0" counter drop/);
    expect(rules).toMatch(/oifname "pingpong0" counter drop/);
  });

  it("lets pods reach the host only on the API server's port", () => {
    expect(rules).toContain('iifname "pingpong0" ip daddr 10.250.0.1 tcp dport 34567 accept');
    const input = rules.slice(rules.indexOf("chain input"));
    expect(input.indexOf("tcp dport 34567 accept")).toBeLessThan(
      input.indexOf('iifname "pingpong0" counter drop'),
    );
  });

  it("keeps other interfaces away from the node's addresses, and never translates addresses", () => {
    expect(rules).toContain(
      'iifname != { "lo", "pingpong0" } ip daddr { 10.250.0.1, 10.245.0.0/16 } counter drop',
    );
    expect(rules).not.toMatch(/masquerade|snat|dnat|nat/);
  });
});
