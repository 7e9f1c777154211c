/**
 * A real Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver (RBAC on, ServiceAccount tokens
 * signed by a throwaway key) and kube-controller-manager (deployments, replicasets, garbage
 * collection, namespaces, service accounts). There is no scheduler and no kubelet: Pods stay Pending.
 * Used by `pingpong cluster up`, the demo and every test that talks to Kubernetes.
 */
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { Agent, request } from "undici";
import { stringify } from "yaml";
import { freePort } from "../lib/ports.ts";
import { createCertificateAuthority, issueLeafCertificate } from "../operator/pki/mint.ts";
import { type ControlPlaneBinaries, findBinaries } from "./binaries.ts";
import { ManagedProcess } from "./process.ts";

export interface ControlPlaneOptions {
  /** Where to keep certificates, logs and the kubeconfig; a new temporary folder when unset. */
  readonly dir?: string;
  /** Run kube-controller-manager too (default true). */
  readonly controllerManager?: boolean;
  readonly binaries?: ControlPlaneBinaries;
  /** How long each component may take to become ready. */
  readonly startTimeoutMs?: number;
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

interface KubeconfigFields {
  readonly server: string;
  readonly caPem: string;
  readonly token: string;
  readonly user: string;
  readonly namespace?: string;
}

export function kubeconfigYaml(fields: KubeconfigFields): string {
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      {
        name: "pingpong-local",
        cluster: {
          server: fields.server,
          "certificate-authority-data": Buffer.from(fields.caPem).toString("base64"),
        },
      },
    ],
    users: [{ name: fields.user, user: { token: fields.token } }],
    contexts: [
      {
        name: fields.user,
        context: {
          cluster: "pingpong-local",
          user: fields.user,
          ...(fields.namespace ? { namespace: fields.namespace } : {}),
        },
      },
    ],
    "current-context": fields.user,
  });
}

export class ControlPlane {
  readonly dir: string;
  readonly server: string;
  readonly kubeconfigPath: string;
  readonly caPem: string;
  readonly binaries: ControlPlaneBinaries;
  private readonly adminToken: string;
  private readonly processes: ManagedProcess[];
  private readonly owned: readonly string[];

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
    const binaries = options.binaries ?? findBinaries();
    const timeoutMs = options.startTimeoutMs ?? 90_000;
    const createdDir = options.dir === undefined;
    const dir = options.dir ?? (await mkdtemp(join(tmpdir(), "pingpong-cluster-")));
    await mkdir(join(dir, "pki"), { recursive: true });
    await mkdir(join(dir, "logs"), { recursive: true });
    // etcd fsyncs every write; on tmpfs that costs nothing, and the data is throwaway anyway.
    const etcdData = await mkdtemp(join(existsSync("/dev/shm") ? "/dev/shm" : dir, "pingpong-etcd-"));
    const owned = createdDir
      ? [dir, etcdData]
      : [etcdData, join(dir, "pki"), join(dir, "logs"), join(dir, "kubeconfig")];
    const processes: ManagedProcess[] = [];
    const file = (name: string) => join(dir, "pki", name);

    try {
      // Certificates: our own CA for the API server's serving certificate, and a throwaway key that
      // signs ServiceAccount tokens. The admin authenticates with a random static token.
      const ca = await createCertificateAuthority({
        commonName: "pingpong-local-ca",
        keySize: 2048,
        durationMs: 365 * 86_400_000,
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
        ipAddresses: ["127.0.0.1", "10.96.0.1"],
        keySize: 2048,
        durationMs: 365 * 86_400_000,
      });
      const serviceAccountKey = generateKeyPairSync("rsa", { modulusLength: 2048 });
      const adminToken = randomBytes(24).toString("hex");
      await Promise.all([
        writeFile(file("ca.crt"), ca.certificatePem),
        writeFile(file("apiserver.crt"), serving.certificatePem),
        writeFile(file("apiserver.key"), serving.privateKeyPem, { mode: 0o600 }),
        writeFile(file("sa.key"), serviceAccountKey.privateKey.export({ type: "pkcs8", format: "pem" }), {
          mode: 0o600,
        }),
        writeFile(file("sa.pub"), serviceAccountKey.publicKey.export({ type: "spki", format: "pem" })),
        writeFile(file("tokens.csv"), `${adminToken},pingpong-admin,pingpong-admin,"system:masters"\n`, {
          mode: 0o600,
        }),
      ]);

      const [etcdPort, peerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
      const etcdUrl = `http://127.0.0.1:${etcdPort}`;
      const etcd = new ManagedProcess(
        "etcd",
        binaries.etcd,
        [
          "--name=default",
          `--data-dir=${etcdData}`,
          `--listen-client-urls=${etcdUrl}`,
          `--advertise-client-urls=${etcdUrl}`,
          `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
          `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
          `--initial-cluster=default=http://127.0.0.1:${peerPort}`,
          "--log-level=warn",
        ],
        join(dir, "logs", "etcd.log"),
        { ...process.env, ETCD_UNSUPPORTED_ARCH: process.arch === "x64" ? "" : process.arch },
      );
      processes.push(etcd);
      await etcd.waitUntil(
        "healthy",
        async () => {
          const response = await request(`${etcdUrl}/health`);
          return (await response.body.text()).includes('"true"');
        },
        timeoutMs,
      );

      const server = `https://127.0.0.1:${apiPort}`;
      const apiserver = new ManagedProcess(
        "kube-apiserver",
        binaries.kubeApiserver,
        [
          `--etcd-servers=${etcdUrl}`,
          "--bind-address=127.0.0.1",
          "--advertise-address=127.0.0.1",
          `--secure-port=${apiPort}`,
          `--tls-cert-file=${file("apiserver.crt")}`,
          `--tls-private-key-file=${file("apiserver.key")}`,
          `--client-ca-file=${file("ca.crt")}`,
          `--token-auth-file=${file("tokens.csv")}`,
          "--authorization-mode=RBAC",
          `--service-account-issuer=${server}`,
          `--service-account-key-file=${file("sa.pub")}`,
          `--service-account-signing-key-file=${file("sa.key")}`,
          // Room for many Services: a /24 runs out at about 250 (each pair has one).
          "--service-cluster-ip-range=10.96.0.0/16",
          // The API server's own address is loopback, which the endpoints of the "kubernetes" Service
          // may not hold; nothing here uses that Service from a pod, so do not keep trying.
          "--endpoint-reconciler-type=none",
          "--allow-privileged=true",
          `--cert-dir=${join(dir, "pki")}`,
          "--v=0",
        ],
        join(dir, "logs", "kube-apiserver.log"),
      );
      processes.push(apiserver);
      const admin = new Agent({ connect: { ca: ca.certificatePem } });
      try {
        await apiserver.waitUntil(
          "ready",
          async () => {
            const response = await request(`${server}/readyz`, {
              dispatcher: admin,
              headers: { authorization: `Bearer ${adminToken}` },
            });
            return response.statusCode === 200 && (await response.body.text()) === "ok";
          },
          timeoutMs,
        );
      } finally {
        await admin.close();
      }

      const kubeconfig = kubeconfigYaml({
        server,
        caPem: ca.certificatePem,
        token: adminToken,
        user: "pingpong-admin",
      });
      await writeFile(join(dir, "kubeconfig"), kubeconfig, { mode: 0o600 });

      const plane = new ControlPlane({
        dir,
        server,
        caPem: ca.certificatePem,
        adminToken,
        binaries,
        processes,
        owned,
      });
      if (options.controllerManager ?? true) {
        const manager = new ManagedProcess(
          "kube-controller-manager",
          binaries.kubeControllerManager,
          [
            `--kubeconfig=${join(dir, "kubeconfig")}`,
            "--leader-elect=false",
            "--secure-port=0",
            `--controllers=${controllers.join(",")}`,
            `--service-account-private-key-file=${file("sa.key")}`,
            `--root-ca-file=${file("ca.crt")}`,
            "--use-service-account-credentials=false",
            "--v=0",
          ],
          join(dir, "logs", "kube-controller-manager.log"),
        );
        processes.push(manager);
        // The serviceaccount controller creating "default" in "default" shows the manager is working.
        const core = plane.adminKubeConfig().makeApiClient(CoreV1Api);
        await manager.waitUntil(
          "running its controllers",
          async () =>
            (await core.readNamespacedServiceAccount({ name: "default", namespace: "default" })).metadata
              ?.name === "default",
          timeoutMs,
        );
      }
      return plane;
    } catch (error) {
      await Promise.all(processes.reverse().map((p) => p.stop()));
      await rm(etcdData, { recursive: true, force: true });
      throw error;
    }
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

  adminKubeConfig(): KubeConfig {
    const config = new KubeConfig();
    config.loadFromString(
      kubeconfigYaml({
        server: this.server,
        caPem: this.caPem,
        token: this.adminToken,
        user: "pingpong-admin",
      }),
    );
    return config;
  }

  /** A kubeconfig that authenticates as a ServiceAccount, with a token from the TokenRequest API. */
  async serviceAccountKubeconfig(namespace: string, name: string, expirationSeconds = 3600): Promise<string> {
    const core = this.adminKubeConfig().makeApiClient(CoreV1Api);
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

  /** Process ids by component, for measuring them. */
  componentPids(): Record<string, number> {
    return Object.fromEntries(
      this.processes.flatMap((p) => (p.child.pid === undefined || p.exited ? [] : [[p.name, p.child.pid]])),
    );
  }

  /** The log of one component, for failure messages. */
  logTail(component: "etcd" | "kube-apiserver" | "kube-controller-manager", lines = 40): string {
    return this.processes.find((p) => p.name === component)?.tail(lines) ?? "(not running)";
  }

  /** Stops every process (controller manager first, etcd last) and removes what start created. */
  async stop(): Promise<void> {
    for (const process of [...this.processes].reverse()) await process.stop();
    await Promise.all(this.owned.map((path) => rm(path, { recursive: true, force: true })));
  }
}
