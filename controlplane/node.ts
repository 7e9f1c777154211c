/**
 * The local node: containerd (with runc and the CNI bridge), kube-scheduler, the kubelet, kube-proxy
 * (nftables mode), kube-router's network-policy controller (NetworkPolicies enforced with iptables and
 * ipsets) and CoreDNS, next to the control plane of control-plane.ts. It runs real pods of images
 * loaded from archives (hack/images/), and when it stops it leaves the machine as it found it: no
 * process, mount, link, nftables table, iptables chain, ipset, cgroup or fixed host path of its own
 * remains.
 *
 * Some components write fixed host paths whatever their flags say (the kubelet's device-plugins
 * folder, /var/log/containers, containerd's shim sockets under /run/containerd, libcni's cache in
 * /var/lib/cni, network namespaces in /run/netns): what did not exist before the node started is
 * recorded in host-paths.json and removed at stop, or by the next start after a crash.
 */
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rm, rmdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { AppsV1Api, CoreV1Api, type KubeConfig, KubernetesObjectApi } from "@kubernetes/client-node";
import { kubeconfigYaml } from "./kubeconfig.ts";
import { host, processesMentioning, unmountAllUnder } from "./host.ts";
import {
  cniConfig,
  containerdConfig,
  corednsObjects,
  kubeletConfig,
  kubeProxyConfig,
  kubeRouterArgs,
  kubeRouterRbac,
  kubeRouterUser,
  nodeName,
} from "./node-manifests.ts";
import { deleteBridge, deleteTable, type NodeNetwork, nftTables } from "./node-network.ts";
import { ManagedProcess } from "./process.ts";
import { freePort } from "../lib/ports.ts";

/** Paths some components write whatever their flags say. */
export const fixedHostPaths = [
  "/var/lib/kubelet",
  "/var/log/containers",
  "/var/log/pods",
  "/run/containerd",
  "/var/lib/cni",
  "/run/netns",
  "/etc/cni",
  "/opt/cni",
] as const;

const cgroupRoot = "/sys/fs/cgroup";

export interface NodeBinaries {
  readonly kubelet: string;
  readonly kubeProxy: string;
  readonly kubeScheduler: string;
  readonly kubeRouter: string;
}

export interface LocalNodeOptions {
  /** The node's own folder (inside the cluster's). */
  readonly dir: string;
  /** Where each component's log goes, as <component>.log. */
  readonly logsDir: string;
  readonly network: NodeNetwork;
  readonly server: string;
  readonly caPem: string;
  readonly caFile: string;
  readonly tokens: {
    readonly kubelet: string;
    readonly kubeProxy: string;
    readonly scheduler: string;
    readonly kubeRouter: string;
  };
  readonly kubeletServing: { readonly certFile: string; readonly keyFile: string };
  readonly admin: KubeConfig;
  /** Folder of image archives to load into containerd (every *.tar). */
  readonly imagesDir: string;
  /** More archives to load (a test's own images). */
  readonly extraImages?: readonly string[];
  readonly binaries: NodeBinaries;
  readonly corednsImage: string;
  readonly timeoutMs: number;
  /** Called with a line as each step is done. */
  readonly progress: (line: string) => void;
}

/**
 * What existed before the node started (the paths, cgroups and tables it may remove are the
 * others), and what the cluster keeps outside its folder. Written before anything is created, so
 * that whatever kills the cluster, the next start can clean up after it.
 */
interface HostRecord {
  readonly ownedPaths: string[];
  readonly createdPaths: string[];
  readonly netnsBefore: string[];
  readonly cgroupsBefore: string[];
  readonly tablesBefore: string[];
  /** Absent in records of nodes started before kube-router was part of the node. */
  readonly ipsetsBefore?: string[];
}

async function listDir(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => []);
}

/** The cgroup v1 hierarchies and the v2 mount, each once. */
async function cgroupHierarchies(): Promise<string[]> {
  const names = await listDir(cgroupRoot);
  const seen = new Set<string>();
  const result: string[] = [];
  for (const name of names) {
    const path = join(cgroupRoot, name);
    const info = await stat(path).catch(() => undefined);
    if (!info?.isDirectory() || seen.has(`${info.dev}:${info.ino}`)) continue;
    seen.add(`${info.dev}:${info.ino}`);
    result.push(path);
  }
  return result;
}

/** The kubelet's pod cgroups: `kubepods` under each hierarchy. */
async function podCgroups(): Promise<string[]> {
  return (await cgroupHierarchies()).map((h) => join(h, "kubepods")).filter((path) => existsSync(path));
}

/** Every folder of a cgroup tree, deepest first. */
async function cgroupTree(path: string): Promise<string[]> {
  const children = (await readdir(path, { withFileTypes: true }).catch(() => [])).filter((e) =>
    e.isDirectory(),
  );
  const below = await Promise.all(children.map((c) => cgroupTree(join(path, c.name))));
  return [...below.flat(), path];
}

/** Kills what still runs in the cgroup trees, then removes them. */
async function removeCgroups(paths: readonly string[]): Promise<void> {
  for (const root of paths) {
    for (let attempt = 0; attempt < 50; attempt++) {
      const tree = await cgroupTree(root);
      for (const group of tree) {
        const procs = (await readFile(join(group, "cgroup.procs"), "utf8").catch(() => "")).split("\n");
        for (const pid of procs.filter(Boolean)) {
          try {
            process.kill(Number(pid), "SIGKILL");
          } catch {
            // gone already
          }
        }
        await rmdir(group).catch(() => undefined);
      }
      if (!existsSync(root)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export class LocalNode {
  readonly options: LocalNodeOptions;
  readonly containerdSocket: string;
  private readonly processes = new Map<string, ManagedProcess>();

  private constructor(options: LocalNodeOptions) {
    this.options = options;
    this.containerdSocket = join(options.dir, "containerd", "containerd.sock");
  }

  /** Starts containerd, loads the images, then the scheduler, kubelet, kube-proxy and CoreDNS. */
  static async start(options: LocalNodeOptions): Promise<LocalNode> {
    const node = new LocalNode(options);
    try {
      await node.startContainerd();
      const images = await node.loadImages();
      options.progress(`containerd running, ${images} image archives loaded`);
      await node.startScheduler();
      await node.startKubelet();
      options.progress(`Node ${nodeName} Ready`);
      await node.startKubeProxy();
      options.progress("kube-proxy synced (nftables)");
      await node.startKubeRouter();
      options.progress("kube-router enforcing NetworkPolicies (firewall only)");
      await node.startCoredns();
      options.progress("CoreDNS Ready: the first pod");
      return node;
    } catch (error) {
      await node.stop().catch(() => undefined);
      throw error;
    }
  }

  private path(...parts: string[]): string {
    return join(this.options.dir, ...parts);
  }

  private spawn(name: string, command: string, args: readonly string[]): ManagedProcess {
    const child = new ManagedProcess(name, command, args, join(this.options.logsDir, `${name}.log`), {
      ...process.env,
      // containerd finds runc and its shim on PATH.
      PATH: `/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:${process.env.PATH ?? ""}`,
    });
    this.processes.set(name, child);
    return child;
  }

  private kubeconfig(user: string, token: string): string {
    return kubeconfigYaml({ server: this.options.server, caPem: this.options.caPem, token, user });
  }

  /** `ctr` against this node's containerd, in the CRI's namespace. */
  ctr(...args: string[]): Promise<string> {
    return host("ctr", ["--address", this.containerdSocket, "--namespace", "k8s.io", ...args]);
  }

  private async startContainerd(): Promise<void> {
    const dir = this.path("containerd");
    await mkdir(this.path("cni", "net.d"), { recursive: true });
    await mkdir(dir, { recursive: true });
    await writeFile(
      this.path("cni", "net.d", "10-pingpong.conflist"),
      cniConfig(this.options.network, this.path("cni", "ipam")),
    );
    await writeFile(
      join(dir, "config.toml"),
      containerdConfig({
        root: join(dir, "root"),
        state: join(dir, "state"),
        socket: this.containerdSocket,
        opt: join(dir, "opt"),
        cniConfDir: this.path("cni", "net.d"),
      }),
    );
    if (this.containerdSocket.length > 100)
      throw new Error(
        `the cluster folder's path is too long for containerd's socket (${this.containerdSocket}): use a shorter --dir`,
      );
    const containerd = this.spawn("containerd", "containerd", ["--config", join(dir, "config.toml")]);
    await containerd.waitUntil(
      "serving",
      async () => (await this.ctr("version")).includes("Server:"),
      this.options.timeoutMs,
    );
  }

  /** Imports every archive in imagesDir (pause, CoreDNS, the project's image once built) and the extra ones. */
  private async loadImages(): Promise<number> {
    const archives = (await listDir(this.options.imagesDir))
      .filter((f) => f.endsWith(".tar"))
      .map((f) => join(this.options.imagesDir, f));
    for (const archive of [...archives, ...(this.options.extraImages ?? [])]) {
      await this.ctr("images", "import", archive);
    }
    return archives.length + (this.options.extraImages?.length ?? 0);
  }

  private async startScheduler(): Promise<void> {
    const kubeconfig = this.path("scheduler.kubeconfig");
    await writeFile(kubeconfig, this.kubeconfig("system:kube-scheduler", this.options.tokens.scheduler), {
      mode: 0o600,
    });
    this.spawn("kube-scheduler", this.options.binaries.kubeScheduler, [
      `--kubeconfig=${kubeconfig}`,
      "--leader-elect=false",
      "--secure-port=0",
      "--v=0",
    ]);
  }

  private async startKubelet(): Promise<void> {
    const dir = this.path("kubelet");
    await mkdir(join(dir, "root"), { recursive: true });
    await writeFile(join(dir, "resolv.conf"), "");
    await writeFile(
      join(dir, "kubeconfig"),
      this.kubeconfig(`system:node:${nodeName}`, this.options.tokens.kubelet),
      {
        mode: 0o600,
      },
    );
    await writeFile(
      join(dir, "config.yaml"),
      kubeletConfig(
        this.options.network,
        {
          containerdSocket: this.containerdSocket,
          resolvConf: join(dir, "resolv.conf"),
          podLogsDir: join(dir, "pod-logs"),
          volumePluginDir: join(dir, "volume-plugins"),
          clientCaFile: this.options.caFile,
          tlsCertFile: this.options.kubeletServing.certFile,
          tlsPrivateKeyFile: this.options.kubeletServing.keyFile,
        },
        await freePort(this.options.network.nodeIp),
      ),
    );
    const kubelet = this.spawn("kubelet", this.options.binaries.kubelet, [
      `--config=${join(dir, "config.yaml")}`,
      `--kubeconfig=${join(dir, "kubeconfig")}`,
      `--root-dir=${join(dir, "root")}`,
      `--cert-dir=${join(dir, "pki")}`,
      `--hostname-override=${nodeName}`,
      `--node-ip=${this.options.network.nodeIp}`,
      // cAdvisor otherwise looks for /run/containerd/containerd.sock.
      `--containerd=${this.containerdSocket}`,
      "--v=0",
    ]);
    const core = this.options.admin.makeApiClient(CoreV1Api);
    await kubelet.waitUntil(
      "Ready (the Node's condition)",
      async () => {
        const node = await core.readNode({ name: nodeName });
        return node.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true;
      },
      this.options.timeoutMs,
    );
  }

  private async startKubeProxy(): Promise<void> {
    const dir = this.path("kube-proxy");
    await mkdir(dir, { recursive: true });
    await writeFile(
      join(dir, "kubeconfig"),
      this.kubeconfig("system:kube-proxy", this.options.tokens.kubeProxy),
      {
        mode: 0o600,
      },
    );
    const healthz = await freePort();
    await writeFile(
      join(dir, "config.yaml"),
      kubeProxyConfig(
        this.options.network,
        { kubeconfig: join(dir, "kubeconfig") },
        { healthz, metrics: await freePort() },
      ),
    );
    const proxy = this.spawn("kube-proxy", this.options.binaries.kubeProxy, [
      `--config=${join(dir, "config.yaml")}`,
      "--v=0",
    ]);
    await proxy.waitUntil(
      "healthy (rules synced)",
      async () => (await fetch(`http://127.0.0.1:${healthz}/healthz`)).status === 200,
      this.options.timeoutMs,
    );
  }

  private async startKubeRouter(): Promise<void> {
    const dir = this.path("kube-router");
    await mkdir(dir, { recursive: true });
    await writeFile(
      join(dir, "kubeconfig"),
      this.kubeconfig(kubeRouterUser, this.options.tokens.kubeRouter),
      { mode: 0o600 },
    );
    const objects = KubernetesObjectApi.makeApiClient(this.options.admin);
    for (const object of kubeRouterRbac()) await objects.create(object);
    const router = this.spawn(
      "kube-router",
      this.options.binaries.kubeRouter,
      kubeRouterArgs(this.options.network, join(dir, "kubeconfig")),
    );
    // Its first full sync creates its top-level chains and the default policy chain.
    await router.waitUntil(
      "enforcing (its iptables chains in place)",
      async () => {
        const chains = await iptablesChains("ip", "filter");
        return chains.includes("KUBE-ROUTER-FORWARD") && chains.includes("KUBE-NWPLCY-DEFAULT");
      },
      this.options.timeoutMs,
    );
  }

  private async startCoredns(): Promise<void> {
    const objects = KubernetesObjectApi.makeApiClient(this.options.admin);
    for (const object of corednsObjects(this.options.network, this.options.corednsImage))
      await objects.create(object);
    const apps = this.options.admin.makeApiClient(AppsV1Api);
    const kubelet = this.processes.get("kubelet");
    await kubelet?.waitUntil(
      "running CoreDNS (Deployment kube-system/coredns available)",
      async () => {
        const deployment = await apps.readNamespacedDeployment({ name: "coredns", namespace: "kube-system" });
        return (deployment.status?.availableReplicas ?? 0) >= 1;
      },
      this.options.timeoutMs,
    );
  }

  /** Process ids by component. */
  componentPids(): Record<string, number> {
    return Object.fromEntries(
      [...this.processes.values()].flatMap((p) =>
        p.child.pid === undefined || p.exited ? [] : [[p.name, p.child.pid]],
      ),
    );
  }

  logTail(component: string, lines = 40): string {
    return this.processes.get(component)?.tail(lines) ?? "(not running)";
  }

  /**
   * Deletes every pod through the kubelet (so each sandbox's CNI DEL runs and its volumes are
   * unmounted), then waits until containerd runs no task. Call with the controller manager stopped,
   * or ReplicaSets make new pods.
   */
  private async drainPods(timeoutMs = 30_000): Promise<void> {
    const core = this.options.admin.makeApiClient(CoreV1Api);
    const kubelet = this.processes.get("kubelet");
    if (!kubelet || kubelet.exited) return;
    const deadline = Date.now() + timeoutMs;
    const pods = await core
      .listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${nodeName}` })
      .catch(() => ({ items: [] }));
    await Promise.all(
      pods.items.map((pod) =>
        core
          .deleteNamespacedPod({
            name: pod.metadata?.name ?? "",
            namespace: pod.metadata?.namespace ?? "",
            gracePeriodSeconds: 5,
          })
          .catch(() => undefined),
      ),
    );
    while (Date.now() < deadline) {
      const left = await core
        .listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${nodeName}` })
        .catch(() => ({ items: [] }));
      const running = (await this.ctr("tasks", "list").catch(() => ""))
        .split("\n")
        .slice(1)
        .filter((line) => /\bRUNNING\b/.test(line));
      if (left.items.length === 0 && running.length === 0) return;
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /**
   * Stops the node's processes in order (scheduler, pods, kubelet, kube-proxy, containerd and its
   * shims) and unmounts what they mounted. The API server must still run (pods are deleted through
   * it); removeFromHost() finishes once it has stopped.
   */
  async stop(): Promise<void> {
    await this.processes.get("kube-scheduler")?.stop();
    await this.drainPods().catch(() => undefined);
    for (const name of ["kubelet", "kube-router", "kube-proxy", "containerd"])
      await this.processes.get(name)?.stop();
    await killShims(this.containerdSocket);
  }

  /** Removes what the node left on the machine: mounts, cgroups, nftables tables, the bridge, host paths. */
  async removeFromHost(): Promise<void> {
    await removeNodeFromHost(this.options.dir, this.options.network);
  }
}

/** Records the machine's state before a node is created at `dir`; `ownedPaths` are removed with it. */
export async function recordHostBeforeNode(dir: string, ownedPaths: readonly string[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  const record: HostRecord = {
    ownedPaths: [...ownedPaths],
    createdPaths: fixedHostPaths.filter((p) => !existsSync(p)),
    netnsBefore: await listDir("/run/netns"),
    cgroupsBefore: await podCgroups(),
    tablesBefore: await nftTables(),
    ipsetsBefore: await ipsets(),
  };
  await writeFile(join(dir, "host-paths.json"), JSON.stringify(record, null, 2));
}

/** containerd's shims outlive it by design; ours are the ones serving our socket. */
async function killShims(socket: string): Promise<void> {
  for (const shim of await processesMentioning(socket)) {
    try {
      process.kill(shim.pid, "SIGKILL");
    } catch {
      // gone already
    }
  }
}

interface NftRule {
  readonly chain: string;
  readonly handle: number;
  readonly expr: readonly Record<string, unknown>[];
}

/**
 * The kubelet's iptables-nft chains (KUBE-FIREWALL, KUBE-KUBELET-CANARY, ...) in the filter, nat and
 * mangle tables: the KUBE-* chains and the rules that jump to them are removed, nothing else; a
 * table is deleted only when the node created it and nothing else is left in it.
 */
async function removeKubeIptablesChains(tablesBefore: ReadonlySet<string>): Promise<void> {
  for (const family of ["ip", "ip6"]) {
    for (const table of ["filter", "nat", "mangle"]) {
      let listing: { nftables: { chain?: { name: string }; rule?: NftRule }[] };
      try {
        listing = JSON.parse(await host("nft", ["-j", "list", "table", family, table])) as typeof listing;
      } catch {
        continue;
      }
      const chains = listing.nftables.flatMap((i) => (i.chain ? [i.chain.name] : []));
      const rules = listing.nftables.flatMap((i) => (i.rule ? [i.rule] : []));
      const ours = (chain: string) => chain.startsWith("KUBE-");
      const jumpsToOurs = (rule: NftRule) =>
        rule.expr.some((e) => {
          const target =
            (e.jump as { target?: string } | undefined)?.target ??
            (e.goto as { target?: string } | undefined)?.target;
          return target !== undefined && ours(target);
        });
      for (const rule of rules.filter((r) => !ours(r.chain) && jumpsToOurs(r)))
        await host("nft", ["delete", "rule", family, table, rule.chain, "handle", String(rule.handle)]);
      for (const chain of chains.filter(ours)) await host("nft", ["flush", "chain", family, table, chain]);
      for (const chain of chains.filter(ours)) await host("nft", ["delete", "chain", family, table, chain]);
      const othersLeft = rules.some((r) => !ours(r.chain) && !jumpsToOurs(r));
      if (!tablesBefore.has(`${family} ${table}`) && !othersLeft) await deleteTable(family, table);
    }
  }
}

/** The ipsets on the machine, by name; none when the ipset command is missing. */
export async function ipsets(): Promise<string[]> {
  const listing = await host("ipset", ["list", "-n"]).catch(() => "");
  return listing.split("\n").filter(Boolean);
}

/** The chains of an nftables table (iptables-nft writes its tables as `ip filter`, ...). */
export async function iptablesChains(family: string, table: string): Promise<string[]> {
  const listing = await host("nft", ["-j", "list", "table", family, table]).catch(() => '{"nftables":[]}');
  return (JSON.parse(listing) as { nftables: { chain?: { name: string } }[] }).nftables.flatMap((i) =>
    i.chain ? [i.chain.name] : [],
  );
}

/**
 * kube-router's sets (KUBE-SRC-*, KUBE-DST-*, and TMP-* left by a sync it did not finish), IPv4 and
 * IPv6, unless they were there before the node.
 */
async function removeKubeRouterIpsets(before: ReadonlySet<string>): Promise<void> {
  const ours = /^(inet6:)?(KUBE-SRC-|KUBE-DST-|TMP-)/;
  for (const set of await ipsets()) {
    if (before.has(set) || !ours.test(set)) continue;
    await host("ipset", ["destroy", set]);
  }
}

/**
 * Removes everything a node at `dir` left on the machine, also after a crash: processes that still
 * run from it, pods' cgroups, mounts, network namespaces, nftables tables, the bridge and the fixed
 * host paths it created.
 */
export async function removeNodeFromHost(dir: string, network: NodeNetwork): Promise<void> {
  const record = JSON.parse(
    await readFile(join(dir, "host-paths.json"), "utf8").catch(() => "null"),
  ) as HostRecord | null;
  // Normally stopped already; after a crash, containerd's shims (and anything else run from the
  // node's folder) are still here.
  for (const leftover of await processesMentioning(dir)) {
    try {
      process.kill(leftover.pid, "SIGKILL");
    } catch {
      // gone already
    }
  }
  const cgroupsBefore = new Set(record?.cgroupsBefore ?? []);
  await removeCgroups((await podCgroups()).filter((c) => !cgroupsBefore.has(c)));
  await unmountAllUnder(dir);
  const netnsBefore = new Set(record?.netnsBefore ?? []);
  for (const entry of await listDir("/run/netns")) {
    if (netnsBefore.has(entry) || !entry.startsWith("cni-")) continue;
    const path = join("/run/netns", entry);
    await host("umount", [path]).catch(() => undefined);
    await rm(path, { force: true });
  }
  await deleteTable("inet", network.table);
  await deleteTable("ip", "kube-proxy");
  await deleteTable("ip6", "kube-proxy");
  // The chains first: an ipset cannot go while a rule refers to it.
  await removeKubeIptablesChains(new Set(record?.tablesBefore ?? []));
  await removeKubeRouterIpsets(new Set(record?.ipsetsBefore ?? []));
  await deleteBridge(network);
  for (const path of [...(record?.createdPaths ?? []), ...(record?.ownedPaths ?? [])]) {
    await unmountAllUnder(path);
    await rm(path, { recursive: true, force: true });
  }
}
