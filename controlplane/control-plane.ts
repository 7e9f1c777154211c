/**
 * A real Kubernetes cluster on this machine: etcd, kube-apiserver (RBAC on, ServiceAccount tokens
 * signed by a throwaway key) and kube-controller-manager, and with `node: true` a node that runs pods
 * (node.ts: containerd, kube-scheduler, kubelet, kube-proxy, CoreDNS). Without a node it is API-only
 * on 127.0.0.1 and Pods stay Pending: the fast suites use that. Used by `pingpong cluster up`, the
 * demo and every test that talks to Kubernetes.
 */
import { execFile } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { CoreV1Api, KubeConfig, RbacAuthorizationV1Api } from "@kubernetes/client-node";
import { Agent, request } from "undici";
import { errorMessage } from "../lib/logger.ts";
import { freePort } from "../lib/ports.ts";
import { createCertificateAuthority, issueLeafCertificate } from "../lib/pki/mint.ts";
import {
  binaryCacheDir,
  type ControlPlaneBinaries,
  findBinaries,
  kubeRouterBinary,
  nodeImagesDir,
  pinnedCorednsVersion,
} from "./binaries.ts";
import { kubeconfigYaml } from "./kubeconfig.ts";
import { LocalNode, recordHostBeforeNode, removeNodeFromHost } from "./node.ts";
import { kubeRouterUser, nodeName } from "./node-manifests.ts";
import { applyRuleset, createBridge, defaultNodeNetwork, type NodeNetwork } from "./node-network.ts";
import { checkNodeCanStart } from "./node-preflight.ts";
import { ManagedProcess } from "./process.ts";

export { kubeconfigYaml };

const runFile = promisify(execFile);

export interface ControlPlaneOptions {
  /** Where to keep certificates, logs and the kubeconfig; a new temporary folder when unset. */
  readonly dir?: string;
  /** Run kube-controller-manager too (default true). */
  readonly controllerManager?: boolean;
  /** Run a node too, so that pods run (default false: API only). Needs root; see node-preflight.ts. */
  readonly node?: boolean;
  /**
   * API only: run kube-scheduler too (default false), so that pods are bound to Node objects a test
   * registers (no kubelet runs them). With a node, the node runs the scheduler.
   */
  readonly scheduler?: boolean;
  /** Called with a line for each step, for commands that show progress. */
  readonly progress?: (line: string) => void;
  readonly binaries?: ControlPlaneBinaries;
  /** How long each component may take to become ready. */
  readonly startTimeoutMs?: number;
  /** More image archives for the node to load (e.g. a test's Prometheus), besides the node's own. */
  readonly extraImages?: readonly string[];
}

/**
 * Controllers that make Deployments produce Pods, owners take their dependents with them, and an
 * HorizontalPodAutoscaler reads and writes a scale subresource.
 */
export const controllers = [
  "deployment-controller",
  "replicaset-controller",
  "garbage-collector-controller",
  "namespace-controller",
  "serviceaccount-controller",
  "serviceaccount-token-controller",
  "root-ca-certificate-publisher-controller",
  "disruption-controller",
  "horizontal-pod-autoscaler-controller",
] as const;

/** Tokens of the node's components, by the user names default RBAC and the Node authorizer know. */
interface NodeTokens {
  readonly kubelet: string;
  readonly kubeProxy: string;
  readonly scheduler: string;
  /** kube-router's network-policy controller; node-manifests.ts binds its ClusterRole to the user. */
  readonly kubeRouter: string;
}

const token = () => randomBytes(24).toString("hex");

/**
 * Starts a server on ports picked a moment before (lib/ports.ts): when another process took one in
 * between, the server exits with "address already in use", and it is started again on fresh ports,
 * up to three times. `start` spawns the process and says how to wait for it; a process that failed
 * is stopped and dropped from `processes`.
 */
async function onFreshPorts<T>(
  processes: ManagedProcess[],
  start: () => Promise<{ process: ManagedProcess; value: T; ready: () => Promise<void> }>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const started = await start();
    processes.push(started.process);
    try {
      await started.ready();
      return started.value;
    } catch (error) {
      processes.splice(processes.indexOf(started.process), 1);
      await started.process.stop();
      if (attempt >= 3 || !errorMessage(error).includes("address already in use")) throw error;
    }
  }
}

/** The user the API server is at the kubelet (its client certificate's CN). */
const kubeletClientUser = "kube-apiserver-kubelet-client";

/** Where a cluster keeps its files; `owned` is what stop() removes. */
interface Folders {
  readonly dir: string;
  readonly pki: string;
  readonly logs: string;
  readonly node: string;
  readonly etcdData: string;
  readonly owned: string[];
}

async function createFolders(given: string | undefined): Promise<Folders> {
  const dir = given ?? (await mkdtemp(join(tmpdir(), "pingpong-cluster-")));
  const pki = join(dir, "pki");
  const logs = join(dir, "logs");
  const node = join(dir, "node");
  await mkdir(pki, { recursive: true });
  await mkdir(logs, { recursive: true });
  // etcd fsyncs every write; on tmpfs that costs nothing, and the data is throwaway anyway.
  const etcdData = await mkdtemp(join(existsSync("/dev/shm") ? "/dev/shm" : dir, "pingpong-etcd-"));
  const owned = given === undefined ? [dir, etcdData] : [etcdData, pki, logs, join(dir, "kubeconfig"), node];
  return { dir, pki, logs, node, etcdData, owned };
}

interface Credentials {
  readonly caPem: string;
  readonly adminToken: string;
  readonly nodeTokens: NodeTokens | undefined;
}

/**
 * Our own CA for the API server's and kubelet's serving certificates and the API server's client
 * certificate at the kubelet, and a throwaway key that signs ServiceAccount tokens, written to
 * `pki`. Everyone else authenticates with a random static token.
 */
async function writeCredentials(
  pki: string,
  bindAddress: string,
  network: NodeNetwork | undefined,
): Promise<Credentials> {
  const file = (name: string) => join(pki, name);
  const year = 365 * 86_400_000;
  const ca = await createCertificateAuthority({
    commonName: "pingpong-local-ca",
    keySize: 2048,
    durationMs: year,
  });
  const serving = await issueLeafCertificate(ca, {
    usage: "server",
    commonName: "kube-apiserver",
    dnsNames: [
      "localhost",
      "kubernetes",
      "kubernetes.default",
      "kubernetes.default.svc",
      "kubernetes.default.svc.cluster.local",
    ],
    ipAddresses: [...new Set(["127.0.0.1", bindAddress, network?.apiServiceIp ?? "10.96.0.1"])],
    keySize: 2048,
    durationMs: year,
  });
  const serviceAccountKey = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const adminToken = token();
  const nodeTokens: NodeTokens | undefined = network
    ? { kubelet: token(), kubeProxy: token(), scheduler: token(), kubeRouter: token() }
    : undefined;
  const tokenLines = [`${adminToken},pingpong-admin,pingpong-admin,"system:masters"`];
  if (nodeTokens) {
    tokenLines.push(
      `${nodeTokens.kubelet},system:node:${nodeName},system:node:${nodeName},"system:nodes"`,
      `${nodeTokens.kubeProxy},system:kube-proxy,system:kube-proxy`,
      `${nodeTokens.kubeRouter},${kubeRouterUser},${kubeRouterUser}`,
      `${nodeTokens.scheduler},system:kube-scheduler,system:kube-scheduler`,
    );
  }
  await Promise.all([
    writeFile(file("ca.crt"), ca.certificatePem),
    writeFile(file("apiserver.crt"), serving.certificatePem),
    writeFile(file("apiserver.key"), serving.privateKeyPem, { mode: 0o600 }),
    writeFile(file("sa.key"), serviceAccountKey.privateKey.export({ type: "pkcs8", format: "pem" }), {
      mode: 0o600,
    }),
    writeFile(file("sa.pub"), serviceAccountKey.publicKey.export({ type: "spki", format: "pem" })),
    writeFile(file("tokens.csv"), `${tokenLines.join("\n")}\n`, { mode: 0o600 }),
  ]);
  if (network) {
    const kubeletServing = await issueLeafCertificate(ca, {
      usage: "server",
      commonName: nodeName,
      dnsNames: [nodeName],
      ipAddresses: [network.nodeIp],
      keySize: 2048,
      durationMs: year,
    });
    const kubeletClient = await issueLeafCertificate(ca, {
      usage: "client",
      commonName: kubeletClientUser,
      dnsNames: [],
      keySize: 2048,
      durationMs: year,
    });
    await Promise.all([
      writeFile(file("kubelet.crt"), kubeletServing.certificatePem),
      writeFile(file("kubelet.key"), kubeletServing.privateKeyPem, { mode: 0o600 }),
      writeFile(file("apiserver-kubelet-client.crt"), kubeletClient.certificatePem),
      writeFile(file("apiserver-kubelet-client.key"), kubeletClient.privateKeyPem, { mode: 0o600 }),
    ]);
  }
  return { caPem: ca.certificatePem, adminToken, nodeTokens };
}

/** etcd on loopback ports of its own; resolves with its client URL once it is healthy. */
function startEtcd(
  binaries: ControlPlaneBinaries,
  folders: Folders,
  processes: ManagedProcess[],
  timeoutMs: number,
): Promise<string> {
  return onFreshPorts(processes, async () => {
    const [etcdPort, peerPort] = [await freePort(), await freePort()];
    const url = `http://127.0.0.1:${etcdPort}`;
    const etcd = new ManagedProcess(
      "etcd",
      binaries.etcd,
      [
        "--name=default",
        `--data-dir=${folders.etcdData}`,
        `--listen-client-urls=${url}`,
        `--advertise-client-urls=${url}`,
        `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
        `--initial-cluster=default=http://127.0.0.1:${peerPort}`,
        "--log-level=warn",
      ],
      join(folders.logs, "etcd.log"),
      { ...process.env, ETCD_UNSUPPORTED_ARCH: process.arch === "x64" ? "" : process.arch },
    );
    const healthy = async () => {
      const response = await request(`${url}/health`);
      return (await response.body.text()).includes('"true"');
    };
    return { process: etcd, value: url, ready: () => etcd.waitUntil("healthy", healthy, timeoutMs) };
  });
}

/** kube-apiserver on `bindAddress`; resolves with its URL once /readyz answers ok. */
function startApiServer(settings: {
  readonly binaries: ControlPlaneBinaries;
  readonly folders: Folders;
  readonly processes: ManagedProcess[];
  readonly timeoutMs: number;
  readonly etcdUrl: string;
  readonly bindAddress: string;
  readonly network: NodeNetwork | undefined;
  readonly credentials: Credentials;
}): Promise<string> {
  const { binaries, folders, processes, timeoutMs, etcdUrl, bindAddress, network, credentials } = settings;
  const file = (name: string) => join(folders.pki, name);
  const nodeFlags = network
    ? [
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        `--kubelet-client-certificate=${file("apiserver-kubelet-client.crt")}`,
        `--kubelet-client-key=${file("apiserver-kubelet-client.key")}`,
        `--kubelet-certificate-authority=${file("ca.crt")}`,
        "--kubelet-preferred-address-types=InternalIP",
      ]
    : [
        "--authorization-mode=RBAC",
        // Loopback may not be an endpoint of the `kubernetes` Service, and without a node
        // nothing uses that Service from a pod, so do not keep trying.
        "--endpoint-reconciler-type=none",
      ];
  return onFreshPorts(processes, async () => {
    const apiPort = await freePort(bindAddress);
    // Pods may reach the host on this port alone.
    if (network) await applyRuleset(network, apiPort);
    const url = `https://${bindAddress}:${apiPort}`;
    const apiserver = new ManagedProcess(
      "kube-apiserver",
      binaries.kubeApiserver,
      [
        `--etcd-servers=${etcdUrl}`,
        `--bind-address=${bindAddress}`,
        `--advertise-address=${bindAddress}`,
        `--secure-port=${apiPort}`,
        `--tls-cert-file=${file("apiserver.crt")}`,
        `--tls-private-key-file=${file("apiserver.key")}`,
        `--client-ca-file=${file("ca.crt")}`,
        `--token-auth-file=${file("tokens.csv")}`,
        ...nodeFlags,
        `--service-account-issuer=${url}`,
        `--service-account-key-file=${file("sa.pub")}`,
        `--service-account-signing-key-file=${file("sa.key")}`,
        // Room for many Services: a /24 runs out at about 250 (each pair has one).
        `--service-cluster-ip-range=${network?.serviceCidr ?? "10.96.0.0/16"}`,
        "--allow-privileged=true",
        `--cert-dir=${folders.pki}`,
        "--v=0",
      ],
      join(folders.logs, "kube-apiserver.log"),
    );
    const ready = async () => {
      const admin = new Agent({ connect: { ca: credentials.caPem } });
      try {
        await apiserver.waitUntil(
          "ready",
          async () => {
            const response = await request(`${url}/readyz`, {
              dispatcher: admin,
              headers: { authorization: `Bearer ${credentials.adminToken}` },
            });
            return response.statusCode === 200 && (await response.body.text()) === "ok";
          },
          timeoutMs,
        );
      } finally {
        await admin.close();
      }
    };
    return { process: apiserver, value: url, ready };
  });
}

/**
 * `kubectl logs`, `exec` and `port-forward` go through the API server to the kubelet, which asks the
 * API server whether its client may: this binding says yes.
 */
async function allowApiServerAtKubelet(admin: KubeConfig): Promise<void> {
  await admin.makeApiClient(RbacAuthorizationV1Api).createClusterRoleBinding({
    body: {
      metadata: { name: "pingpong:kube-apiserver-kubelet-client" },
      roleRef: {
        apiGroup: "rbac.authorization.k8s.io",
        kind: "ClusterRole",
        name: "system:kubelet-api-admin",
      },
      subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: kubeletClientUser }],
    },
  });
}

/** kube-controller-manager with the admin kubeconfig; resolves once its controllers are working. */
async function startControllerManager(settings: {
  readonly binaries: ControlPlaneBinaries;
  readonly folders: Folders;
  readonly processes: ManagedProcess[];
  readonly timeoutMs: number;
  readonly network: NodeNetwork | undefined;
  readonly admin: KubeConfig;
}): Promise<void> {
  const { binaries, folders, processes, timeoutMs, network, admin } = settings;
  const nodeControllerFlags = network
    ? [
        // Every default controller: with a node, endpoints, node lifecycle and pod GC matter.
        "--controllers=*",
        "--allocate-node-cidrs=true",
        `--cluster-cidr=${network.clusterCidr}`,
        "--node-cidr-mask-size=24",
        `--service-cluster-ip-range=${network.serviceCidr}`,
        // It otherwise creates a folder under /usr/libexec.
        `--flex-volume-plugin-dir=${join(folders.node, "flexvolume")}`,
      ]
    : [`--controllers=${controllers.join(",")}`];
  const manager = new ManagedProcess(
    "kube-controller-manager",
    binaries.kubeControllerManager,
    [
      `--kubeconfig=${join(folders.dir, "kubeconfig")}`,
      "--leader-elect=false",
      "--secure-port=0",
      ...nodeControllerFlags,
      `--service-account-private-key-file=${join(folders.pki, "sa.key")}`,
      `--root-ca-file=${join(folders.pki, "ca.crt")}`,
      "--use-service-account-credentials=false",
      "--v=0",
    ],
    join(folders.logs, "kube-controller-manager.log"),
  );
  processes.push(manager);
  // The serviceaccount controller creating "default" in "default" shows the manager is working.
  const core = admin.makeApiClient(CoreV1Api);
  await manager.waitUntil(
    "running its controllers",
    async () =>
      (await core.readNamespacedServiceAccount({ name: "default", namespace: "default" })).metadata?.name ===
      "default",
    timeoutMs,
  );
}

export class ControlPlane {
  readonly dir: string;
  readonly server: string;
  readonly kubeconfigPath: string;
  readonly caPem: string;
  readonly binaries: ControlPlaneBinaries;
  private localNode: LocalNode | undefined;
  private readonly adminToken: string;
  private readonly processes: ManagedProcess[];
  private readonly owned: readonly string[];
  private stopped = false;

  private constructor(fields: {
    dir: string;
    server: string;
    caPem: string;
    adminToken: string;
    binaries: ControlPlaneBinaries;
    processes: ManagedProcess[];
    owned: readonly string[];
  }) {
    this.dir = fields.dir;
    this.server = fields.server;
    this.kubeconfigPath = join(fields.dir, "kubeconfig");
    this.caPem = fields.caPem;
    this.adminToken = fields.adminToken;
    this.binaries = fields.binaries;
    this.processes = fields.processes;
    this.owned = fields.owned;
  }

  static async start(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
    const timeoutMs = options.startTimeoutMs ?? 90_000;
    const progress = options.progress ?? (() => undefined);
    const network: NodeNetwork | undefined = options.node ? defaultNodeNetwork : undefined;
    if (network) {
      // Before anything starts: a node that cannot run says why, and a crashed one is cleaned up.
      const preflight = await checkNodeCanStart(network, nodeImagesDir());
      if (preflight.staleOwner) {
        progress(`Removing what a stopped cluster (pid ${preflight.staleOwner.pid}) left on this machine`);
        await removeNodeFromHost(join(preflight.staleOwner.dir, "node"), network);
      }
    }
    const binaries = options.binaries ?? findBinaries();
    const folders = await createFolders(options.dir);
    const processes: ManagedProcess[] = [];
    let node: LocalNode | undefined;
    try {
      if (network) {
        await recordHostBeforeNode(folders.node, [folders.etcdData]);
        await createBridge(network, folders.dir);
      }
      // The API server listens on the node's address when there is a node (pods reach it there
      // through the `kubernetes` Service), else on loopback.
      const bindAddress = network?.nodeIp ?? "127.0.0.1";
      const credentials = await writeCredentials(folders.pki, bindAddress, network);
      progress("Starting etcd");
      const etcdUrl = await startEtcd(binaries, folders, processes, timeoutMs);
      progress("Starting kube-apiserver");
      const server = await startApiServer({
        binaries,
        folders,
        processes,
        timeoutMs,
        etcdUrl,
        bindAddress,
        network,
        credentials,
      });

      const plane = new ControlPlane({
        dir: folders.dir,
        server,
        caPem: credentials.caPem,
        adminToken: credentials.adminToken,
        binaries,
        processes,
        owned: folders.owned,
      });
      await writeFile(plane.kubeconfigPath, plane.adminKubeconfig(), { mode: 0o600 });
      const admin = plane.adminClientConfig();
      if (network) await allowApiServerAtKubelet(admin);
      if (options.controllerManager ?? true) {
        progress("Starting kube-controller-manager");
        await startControllerManager({ binaries, folders, processes, timeoutMs, network, admin });
      }
      if (options.scheduler && !network) {
        progress("Starting kube-scheduler");
        // As the admin, like kube-controller-manager here: there is no node whose RBAC to follow.
        const scheduler = new ManagedProcess(
          "kube-scheduler",
          join(binaryCacheDir(), "kube-scheduler"),
          [
            `--kubeconfig=${join(folders.dir, "kubeconfig")}`,
            "--leader-elect=false",
            "--secure-port=0",
            "--v=0",
          ],
          join(folders.logs, "kube-scheduler.log"),
        );
        processes.push(scheduler);
      }
      if (network && credentials.nodeTokens) {
        progress(
          "Starting the node: containerd, kube-scheduler, kubelet, kube-proxy, kube-router (network policies), CoreDNS",
        );
        const bin = binaryCacheDir();
        const pki = (name: string) => join(folders.pki, name);
        node = await LocalNode.start({
          dir: folders.node,
          logsDir: folders.logs,
          network,
          server,
          caPem: credentials.caPem,
          caFile: pki("ca.crt"),
          tokens: credentials.nodeTokens,
          kubeletServing: { certFile: pki("kubelet.crt"), keyFile: pki("kubelet.key") },
          admin,
          imagesDir: nodeImagesDir(),
          extraImages: options.extraImages ?? [],
          binaries: {
            kubelet: join(bin, "kubelet"),
            kubeProxy: join(bin, "kube-proxy"),
            kubeScheduler: join(bin, "kube-scheduler"),
            kubeRouter: kubeRouterBinary(),
          },
          corednsImage: `registry.k8s.io/coredns/coredns:${pinnedCorednsVersion()}`,
          timeoutMs,
          progress,
        });
        plane.localNode = node;
      }
      return plane;
    } catch (error) {
      await node?.stop().catch(() => undefined);
      await Promise.all(processes.reverse().map((p) => p.stop()));
      if (network) await removeNodeFromHost(folders.node, network);
      await rm(folders.etcdData, { recursive: true, force: true });
      throw error;
    }
  }

  /** Runs this cluster's kubectl as its admin; resolves with what it printed. */
  async kubectl(...args: string[]): Promise<string> {
    const { stdout } = await runFile(this.binaries.kubectl, ["--kubeconfig", this.kubeconfigPath, ...args], {
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
  }

  /** The node, when started with `node: true`. */
  get node(): LocalNode | undefined {
    return this.localNode;
  }

  /** The admin kubeconfig's contents (the same as the file at kubeconfigPath). */
  adminKubeconfig(): string {
    return kubeconfigYaml({
      server: this.server,
      caPem: this.caPem,
      token: this.adminToken,
      user: "pingpong-admin",
    });
  }

  /** The admin kubeconfig loaded for @kubernetes/client-node's API clients. */
  adminClientConfig(): KubeConfig {
    const config = new KubeConfig();
    config.loadFromString(this.adminKubeconfig());
    return config;
  }

  /** A kubeconfig that authenticates as a ServiceAccount, with a token from the TokenRequest API. */
  async serviceAccountKubeconfig(namespace: string, name: string, expirationSeconds = 3600): Promise<string> {
    const core = this.adminClientConfig().makeApiClient(CoreV1Api);
    const response = await core.createNamespacedServiceAccountToken({
      name,
      namespace,
      body: { spec: { audiences: [], expirationSeconds } },
    });
    const token = response.status?.token;
    if (!token) throw new Error(`the TokenRequest for ${namespace}/${name} returned no token`);
    return kubeconfigYaml({
      server: this.server,
      caPem: this.caPem,
      token,
      user: `system:serviceaccount:${namespace}:${name}`,
      namespace,
    });
  }

  async serviceAccountKubeConfig(namespace: string, name: string): Promise<KubeConfig> {
    const config = new KubeConfig();
    config.loadFromString(await this.serviceAccountKubeconfig(namespace, name));
    return config;
  }

  /** Process ids by component, for measuring them (the node's too). */
  componentPids(): Record<string, number> {
    return {
      ...Object.fromEntries(
        this.processes.flatMap((p) => (p.child.pid === undefined || p.exited ? [] : [[p.name, p.child.pid]])),
      ),
      ...this.node?.componentPids(),
    };
  }

  /** The log of one component, for failure messages. */
  logTail(component: string, lines = 40): string {
    return (
      this.processes.find((p) => p.name === component)?.tail(lines) ??
      this.node?.logTail(component, lines) ??
      "(not running)"
    );
  }

  /**
   * Stops everything and removes what start created. With a node: the controller manager first (so
   * no new pods appear), then the node (its pods through the kubelet, then the kubelet, kube-proxy
   * and containerd), then the API server and etcd last (an API server whose etcd is gone never
   * exits), then the network and host paths.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const ordered = [...this.processes].reverse();
    if (this.node) {
      await this.processes.find((p) => p.name === "kube-controller-manager")?.stop();
      await this.node.stop();
    }
    for (const process of ordered) await process.stop();
    if (this.node) await this.node.removeFromHost();
    await Promise.all(this.owned.map((path) => rm(path, { recursive: true, force: true })));
  }
}
