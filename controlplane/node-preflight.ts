/**
 * What the local node needs from the machine, checked before anything starts, so that a node that
 * cannot run says what is missing and how to get the API-only control plane instead: never a hang,
 * never half a cluster.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { binaryCacheDir, executable, kubeRouterBinary } from "./binaries.ts";
import { processAlive } from "./host.ts";
import {
  type BridgeOwner,
  hostRanges,
  type NodeNetwork,
  nftTables,
  ownerOfBridge,
  rangeCollisions,
} from "./node-network.ts";

export class NodeUnavailableError extends Error {
  override readonly name = "NodeUnavailableError";
}

/** Debian package -> a file it installs that the node runs. */
const packages: Record<string, readonly string[]> = {
  containerd: ["/usr/bin/containerd", "/usr/bin/containerd-shim-runc-v2", "/usr/bin/ctr"],
  runc: ["/usr/sbin/runc"],
  "containernetworking-plugins": ["/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/loopback"],
  nftables: ["/usr/sbin/nft"],
  iproute2: ["/usr/sbin/ip", "/usr/bin/ip"],
};

/** What kube-router's network-policy controller runs, each by every name it calls. */
const policyPackages: Record<string, readonly (readonly string[])[]> = {
  iptables: [["/usr/sbin/iptables"], ["/usr/sbin/iptables-save"], ["/usr/sbin/iptables-restore"]],
  ipset: [["/usr/sbin/ipset", "/sbin/ipset"]],
};

export const nodeBinaryNames = ["kubelet", "kube-proxy", "kube-scheduler"] as const;

/** Image archives every node loads into its containerd (hack/images/build-base-images.sh). */
export const systemImageArchives = ["pause.tar", "coredns.tar"] as const;

function read(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return undefined;
  }
}

export interface NodePreflight {
  /** A bridge left by a cluster whose process is gone: its leftovers must be removed first. */
  readonly staleOwner?: BridgeOwner;
}

/** Every problem that stops the node, as lines that say what to do; throws NodeUnavailableError. */
export async function checkNodeCanStart(
  network: NodeNetwork,
  imagesDir: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<NodePreflight> {
  const problems: string[] = [];
  if (process.getuid?.() !== 0) {
    problems.push(
      "not running as root: the node needs root for containerd, network namespaces, mounts and nftables",
    );
  }

  const missingPackages = [
    ...Object.entries(packages)
      .filter(([, files]) => !files.some(executable))
      .map(([name]) => name),
    ...Object.entries(policyPackages)
      .filter(([, commands]) => !commands.every((files) => files.some(executable)))
      .map(([name]) => `${name} (kube-router's network policies)`),
  ];
  if (missingPackages.length > 0) {
    problems.push(
      `Debian packages missing: ${missingPackages.join(", ")} (\`make node\` installs them, or ` +
        `apt-get install --no-install-recommends ${missingPackages.map((p) => p.split(" ")[0]).join(" ")})`,
    );
  }

  const bin = binaryCacheDir(env);
  const missingBinaries = nodeBinaryNames.filter((name) => !executable(join(bin, name)));
  if (missingBinaries.length > 0)
    problems.push(
      `Kubernetes node binaries missing in ${bin}: ${missingBinaries.join(", ")} (\`make node\` builds them)`,
    );

  if (!executable(kubeRouterBinary(env)))
    problems.push(
      `kube-router missing at ${kubeRouterBinary(env)}: it enforces the node's NetworkPolicies (\`make node\` builds it)`,
    );

  const missingImages = systemImageArchives.filter((name) => !existsSync(join(imagesDir, name)));
  if (missingImages.length > 0)
    problems.push(
      `node images missing in ${imagesDir}: ${missingImages.join(", ")} (\`make node\` builds them)`,
    );

  const bridgeNetfilter = read("/proc/sys/net/bridge/bridge-nf-call-iptables");
  if (bridgeNetfilter === undefined) {
    problems.push("the kernel module br_netfilter is not loaded (Services need it: modprobe br_netfilter)");
  } else if (bridgeNetfilter !== "1") {
    problems.push(
      "net.bridge.bridge-nf-call-iptables is 0: Services between pods on the bridge need it at 1 " +
        "(sysctl -w net.bridge.bridge-nf-call-iptables=1)",
    );
  }
  if (!(read("/proc/filesystems") ?? "").includes("overlay"))
    problems.push(
      "the kernel has no overlay filesystem (modprobe overlay): containerd's snapshotter needs it",
    );
  if (!existsSync("/sys/fs/cgroup/memory") && !existsSync("/sys/fs/cgroup/cgroup.controllers"))
    problems.push("no cgroup memory controller under /sys/fs/cgroup: the kubelet cannot run pods");

  let staleOwner: BridgeOwner | undefined;
  if (executable("/usr/sbin/ip") || executable("/usr/bin/ip")) {
    const owner = await ownerOfBridge(network).catch(() => undefined);
    if (owner === undefined) {
      problems.push(
        `a network link named ${network.bridge} exists and is not a pingpong node's: remove it or pick another machine`,
      );
    } else if (owner !== null && processAlive(owner.pid)) {
      problems.push(
        `another pingpong cluster with a node is running (pid ${owner.pid}, folder ${owner.dir}); one node per ` +
          `machine: stop it first (Ctrl-C in its terminal, or kill ${owner.pid}), or start this one with --no-node`,
      );
    } else if (owner !== null) {
      staleOwner = owner;
    }
    if (owner === null) {
      const collisions = rangeCollisions(network, await hostRanges());
      for (const collision of collisions)
        problems.push(`${collision}: the node's ranges must be unused here`);
    }
  }
  if (executable("/usr/sbin/nft") && process.getuid?.() === 0 && !staleOwner) {
    const tables = await nftTables().catch(() => []);
    const foreign = tables.filter((t) => t.endsWith(" kube-proxy") || t.endsWith(` ${network.table}`));
    if (foreign.length > 0)
      problems.push(
        `nftables tables of another node exist (${foreign.join(", ")}): is a kube-proxy running here?`,
      );
  }

  if (problems.length > 0) {
    throw new NodeUnavailableError(
      `the local node cannot start:\n${problems.map((p) => `  - ${p}`).join("\n")}\n` +
        "Without a node, run the API-only control plane: pingpong cluster up --no-node",
    );
  }
  return staleOwner ? { staleOwner } : {};
}
