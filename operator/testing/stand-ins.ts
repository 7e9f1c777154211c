/**
 * A pair's pods without a kubelet: real ponger and pinger processes on 127.0.0.1, reading the pair's
 * own Secrets from folders written the way the kubelet writes Secret volumes (and re-written when a
 * Secret changes, after `syncDelayMs`, as the kubelet's periodic sync would), and Pod objects whose
 * IP and `metrics` port point at them. The Pods are controlled by the pair, so no ReplicaSet adopts
 * them, and the garbage collector removes them with it.
 */
import type { V1Pod, V1Secret } from "@kubernetes/client-node";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { eventually } from "../../controlplane/testing.ts";
import type { PingPongPair } from "../api/types.ts";
import { childNames, labels, ownerReference } from "../pingpongpair/names.ts";
import type { KubeClient } from "../runtime/kube-client.ts";
import { resources } from "../runtime/resources.ts";
import { KubeletVolume } from "../../workloads/testing/kubelet-volume.ts";
import { CliProcess } from "../../workloads/testing/processes.ts";

const hostsHook = fileURLToPath(new URL("../../workloads/testing/hosts.ts", import.meta.url));

export interface StandInOptions {
  readonly pingers?: number;
  readonly intervalMs?: number;
  readonly mutualTls?: boolean;
  /** How long a Secret change takes to reach the volumes (the kubelet's sync), default 200 ms. */
  readonly syncDelayMs?: number;
}

type Files = Record<string, string>;

function files(secret: V1Secret | undefined): Files | undefined {
  if (!secret?.data?.["tls.crt"]) return undefined;
  return Object.fromEntries(
    Object.entries(secret.data).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]),
  );
}

export class StandIns {
  readonly pingers: CliProcess[] = [];
  ponger!: CliProcess;
  readonly podNames: string[] = [];
  private readonly volumes: { ponger?: KubeletVolume; pinger?: KubeletVolume } = {};
  private readonly written: { ponger?: string; pinger?: string } = {};
  private dir = "";
  private syncing: NodeJS.Timeout | undefined;
  private paused = false;
  private readonly admin: KubeClient;
  private readonly pair: PingPongPair;

  private constructor(admin: KubeClient, pair: PingPongPair) {
    this.admin = admin;
    this.pair = pair;
  }

  static async start(admin: KubeClient, pair: PingPongPair, options: StandInOptions = {}): Promise<StandIns> {
    const standIns = new StandIns(admin, pair);
    try {
      await standIns.run(options);
      return standIns;
    } catch (error) {
      await standIns.stop();
      throw error;
    }
  }

  private get namespace(): string {
    return this.pair.metadata?.namespace ?? "";
  }

  private get name(): string {
    return this.pair.metadata?.name ?? "";
  }

  private async secrets(): Promise<{ ponger?: Files; pinger?: Files }> {
    const names = childNames(this.name);
    const [ponger, pinger] = await Promise.all([
      this.admin.get<V1Secret>(resources.secret, this.namespace, names.pongerSecret),
      this.admin.get<V1Secret>(resources.secret, this.namespace, names.pingerSecret),
    ]);
    return { ponger: files(ponger), pinger: files(pinger) };
  }

  /** Stops copying Secret changes to the volumes, as a kubelet that lags would. */
  pauseSync(): void {
    this.paused = true;
  }

  resumeSync(): void {
    this.paused = false;
  }

  /** Copies changed Secrets into the volumes, kubelet-style. */
  private async sync(): Promise<void> {
    if (this.paused) return;
    const current = await this.secrets();
    for (const role of ["ponger", "pinger"] as const) {
      const data = current[role];
      const text = JSON.stringify(data);
      if (!data || text === this.written[role]) continue;
      const volume = this.volumes[role];
      if (volume) await volume.write(data);
      else this.volumes[role] = await KubeletVolume.create(data);
      this.written[role] = text;
    }
  }

  private async run(options: StandInOptions): Promise<void> {
    const mutual = options.mutualTls ?? true;
    await eventually("the pair's leaf Secrets", async () => {
      const s = await this.secrets();
      return s.ponger && s.pinger ? true : undefined;
    });
    await this.sync();
    const syncDelayMs = options.syncDelayMs ?? 200;
    const loop = () => {
      this.syncing = setTimeout(() => {
        void this.sync()
          .catch(() => undefined)
          .finally(() => {
            if (this.syncing) loop();
          });
      }, syncDelayMs);
    };
    loop();

    this.dir = await mkdtemp(join(tmpdir(), "stand-ins-"));
    const names = childNames(this.name);
    const server = this.volumes.ponger;
    const client = this.volumes.pinger;
    if (!server || !client) throw new Error("the volumes were not written");

    const pongerPod = `${names.ponger}-standin`;
    await writeFile(
      join(this.dir, "ponger.yaml"),
      `service:
  address: 127.0.0.1
  port: 0
  protocol: https
  tlsCertificate: ${server.path("tls.crt")}
  tlsPrivateKey: ${server.path("tls.key")}
${mutual ? `  clientCA: ${server.path("ca.crt")}\n` : ""}metrics:
  address: 127.0.0.1
  port: 0
`,
    );
    this.ponger = new CliProcess(["ponger", "--config", join(this.dir, "ponger.yaml")], {
      POD_NAME: pongerPod,
    });
    const pongerPort = new URL(await this.ponger.logged("Ponger listening", "url")).port;
    await this.createPod(pongerPod, "ponger", this.ponger);

    const service = `${names.ponger}.${this.namespace}.svc`;
    await writeFile(
      join(this.dir, "pinger.yaml"),
      `ponger:
  url: https://${service}:${pongerPort}/ping
  acceptCert: ${client.path("ca.crt")}
${mutual ? `  clientCertificate: ${client.path("tls.crt")}\n  clientPrivateKey: ${client.path("tls.key")}\n` : ""}interval: ${options.intervalMs ?? 100}ms
timeout: 2s
metrics:
  address: 127.0.0.1
  port: 0
`,
    );
    for (let i = 0; i < (options.pingers ?? 1); i++) {
      const pod = `${names.pinger}-standin-${i}`;
      const pinger = new CliProcess(["pinger", "--config", join(this.dir, "pinger.yaml")], {
        POD_NAME: pod,
        NODE_OPTIONS: `--import=${hostsHook}`,
        PINGPONG_TEST_HOSTS: `${service}=127.0.0.1`,
      });
      this.pingers.push(pinger);
      await this.createPod(pod, "pinger", pinger);
    }
  }

  /** A Pod of the pair, Running at 127.0.0.1 with its `metrics` port where `process` serves /status. */
  private async createPod(name: string, component: "ponger" | "pinger", process: CliProcess): Promise<void> {
    const port = Number(new URL(await process.logged("Metrics and probes listening", "url")).port);
    await this.admin.create<V1Pod>({
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name,
        namespace: this.namespace,
        labels: labels(this.name, component),
        ownerReferences: [ownerReference(this.pair)],
      },
      spec: {
        containers: [
          { name: component, image: "stand-in", ports: [{ name: "metrics", containerPort: port }] },
        ],
      },
    });
    await this.admin.apply(
      {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name, namespace: this.namespace },
        status: { phase: "Running", podIP: "127.0.0.1", podIPs: [{ ip: "127.0.0.1" }] },
      },
      "status",
    );
    this.podNames.push(name);
  }

  async stop(): Promise<void> {
    clearTimeout(this.syncing);
    this.syncing = undefined;
    await Promise.all(
      [...this.pingers, ...((this.ponger as CliProcess | undefined) ? [this.ponger] : [])].map((p) =>
        p.stop(),
      ),
    );
    await Promise.all(
      this.podNames.map((name) =>
        this.admin.delete(resources.pod, this.namespace, name).catch(() => undefined),
      ),
    );
    await this.volumes.ponger?.remove();
    await this.volumes.pinger?.remove();
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }
}
