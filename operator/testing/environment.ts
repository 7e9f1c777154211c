/**
 * A real control plane with what the operator ships installed: the CRD from crds/ and the RBAC from
 * config/rbac, and a kubeconfig that authenticates as the operator's ServiceAccount. Operators
 * started here therefore have exactly the permissions the manifests grant.
 */
import { Writable } from "node:stream";
import type { ControlPlane, ControlPlaneOptions } from "../../controlplane/control-plane.ts";
import { eventually, startTestControlPlane, testNamespace } from "../../controlplane/testing.ts";
import { installOperator, operatorServiceAccount } from "../../controlplane/install.ts";
import { createLogger, errorMessage, type Logger } from "../../lib/logger.ts";
import type { PingPongPair, PingPongPairSpec } from "../api/types.ts";
import { type OperatorOptions, type RunningOperator, startOperator } from "../operator.ts";
import { type ClusterConnection, connectionFromKubeconfig } from "../runtime/cluster-connection.ts";
import { KubeClient } from "../runtime/kube-client.ts";
import { resources } from "../runtime/resources.ts";

export const operatorNamespace = "pingpong-system";

/** How tests run an operator in-process: quiet, on loopback, in pingpong-system, 1 s CA rotation steps. */
export function testOperatorOptions(connection: ClusterConnection): OperatorOptions {
  return {
    connection,
    logger: quietLogger("operator"),
    namespaces: [],
    workers: 4,
    image: "pingpong-operator:test",
    metricsAddress: "127.0.0.1",
    metricsPort: 0,
    leaderElection: false,
    namespace: operatorNamespace,
    rotationStepMs: 1_000,
  };
}

export class OperatorEnvironment {
  readonly plane: ControlPlane;
  readonly admin: KubeClient;
  readonly operatorConnection: ClusterConnection;
  private readonly operators: RunningOperator[] = [];

  private constructor(plane: ControlPlane, admin: ClusterConnection, operator: ClusterConnection) {
    this.plane = plane;
    this.admin = new KubeClient(admin);
    this.operatorConnection = operator;
  }

  static async start(options: ControlPlaneOptions = {}): Promise<OperatorEnvironment> {
    const plane = await startTestControlPlane(options);
    try {
      const admin = await connectionFromKubeconfig(plane.adminKubeconfig());
      await installOperator(new KubeClient(admin), operatorNamespace);
      const operator = await connectionFromKubeconfig(
        await plane.serviceAccountKubeconfig(operatorNamespace, operatorServiceAccount),
      );
      return new OperatorEnvironment(plane, admin, operator);
    } catch (error) {
      await plane.stop();
      throw error;
    }
  }

  /** Starts an operator in this process, as the operator's ServiceAccount. */
  async startOperator(overrides: Partial<OperatorOptions> = {}): Promise<RunningOperator> {
    const operator = await startOperator({ ...testOperatorOptions(this.operatorConnection), ...overrides });
    this.operators.push(operator);
    return operator;
  }

  async stopOperators(): Promise<void> {
    await Promise.all(this.operators.splice(0).map((o) => o.stop()));
  }

  /** A fresh namespace; `restricted` labels it to enforce Pod Security "restricted". */
  async namespace(prefix: string, restricted = true): Promise<string> {
    const name = testNamespace(prefix);
    await this.admin.create({
      apiVersion: "v1",
      kind: "Namespace",
      metadata: {
        name,
        labels: restricted
          ? {
              "pod-security.kubernetes.io/enforce": "restricted",
              "pod-security.kubernetes.io/enforce-version": "latest",
            }
          : {},
      },
    });
    return name;
  }

  async createPair(namespace: string, name: string, spec: PingPongPairSpec = {}): Promise<PingPongPair> {
    return this.admin.create<PingPongPair>({
      apiVersion: "pingpong.dev/v1alpha1",
      kind: "PingPongPair",
      metadata: { name, namespace },
      spec,
    });
  }

  async pair(namespace: string, name: string): Promise<PingPongPair | undefined> {
    return this.admin.get<PingPongPair>(resources.pingPongPair, namespace, name);
  }

  /** Waits until the pair's condition has `status` (and, if given, `reason`) for its current generation. */
  async condition(
    namespace: string,
    name: string,
    type: string,
    status: string,
    reason?: string,
    timeoutMs = 30_000,
  ): Promise<PingPongPair> {
    let last: PingPongPair | undefined;
    try {
      return await eventually(
        `${namespace}/${name} condition ${type}=${status}${reason ? ` (${reason})` : ""}`,
        async () => {
          const pair = await this.pair(namespace, name);
          last = pair;
          const condition = pair?.status?.conditions?.find((c) => c.type === type);
          const current = pair?.status?.observedGeneration === pair?.metadata?.generation;
          return current &&
            condition?.status === status &&
            (reason === undefined || condition.reason === reason)
            ? pair
            : undefined;
        },
        timeoutMs,
      );
    } catch (error) {
      const seen = (last?.status?.conditions ?? []).map(
        (c) => `${c.type}=${c.status} ${c.reason}: ${c.message}`,
      );
      throw new Error(`${errorMessage(error)}\nlast conditions:\n  ${seen.join("\n  ") || "(none)"}`, {
        cause: error,
      });
    }
  }

  async stop(): Promise<void> {
    await this.stopOperators();
    await this.plane.stop();
  }

  /** For afterAll: the environment is unset when beforeAll failed to start it. */
  static async stopIfStarted(env: OperatorEnvironment | undefined): Promise<void> {
    await env?.stop();
  }
}

/** Logs to nowhere unless PINGPONG_TEST_LOGS is set (then to stderr), to keep test output readable. */
export function quietLogger(name: string): Logger {
  if (process.env.PINGPONG_TEST_LOGS) return createLogger(name, process.stderr);
  return createLogger(name, new Writable({ write: (_c, _e, done) => done() }));
}
