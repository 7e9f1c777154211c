/**
 * Installs what the operator needs from the shipped files (crds/, config/rbac), as an admin would
 * with `kubectl apply`: used by the demo and by every test that runs the operator.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { KubernetesObject } from "@kubernetes/client-node";
import { parseAllDocuments, parseDocument } from "yaml";
import { projectRoot } from "../lib/repo.ts";
import { loadCrd } from "../operator/api/crd.ts";
import { KubeApiError, type KubeClient } from "../operator/runtime/kube-client.ts";
import { resources } from "../operator/runtime/resources.ts";

export const operatorServiceAccount = "pingpong-operator";

interface CrdObject extends KubernetesObject {
  status?: { conditions?: { type: string; status: string }[] };
}

/** Every object in YAML text (several documents allowed). */
export function objectsInYaml(text: string): KubernetesObject[] {
  return parseAllDocuments(text)
    .map((doc) => doc.toJS() as KubernetesObject | null)
    .filter((object): object is KubernetesObject => object !== null);
}

/** Every object in a YAML file. */
export function objectsIn(file: string): KubernetesObject[] {
  return objectsInYaml(readFileSync(file, "utf8"));
}

/** The files a kustomization lists under `resources`, as paths. */
export function kustomizationResources(dir: string): string[] {
  const kustomization = parseDocument(readFileSync(join(dir, "kustomization.yaml"), "utf8")).toJS() as {
    resources?: string[];
  };
  return (kustomization.resources ?? []).map((resource) => join(dir, resource));
}

/** The objects config/rbac/kustomization.yaml lists, as shipped, with their namespace set to `namespace`. */
export function rbacObjects(namespace: string): KubernetesObject[] {
  return kustomizationResources(join(projectRoot(), "config", "rbac")).flatMap((file) =>
    objectsIn(file).map((object) => {
      const bound = object as KubernetesObject & { subjects?: { namespace?: string }[] };
      if (bound.metadata?.namespace) bound.metadata.namespace = namespace;
      for (const subject of bound.subjects ?? []) if (subject.namespace) subject.namespace = namespace;
      return bound;
    }),
  );
}

async function createIfMissing(client: KubeClient, object: KubernetesObject): Promise<void> {
  try {
    await client.create(object);
  } catch (error) {
    if (!(error instanceof KubeApiError && error.status === 409)) throw error;
  }
}

/** Installs the CRD (and waits until it is served), the operator's namespace and its RBAC. */
export async function installOperator(
  admin: KubeClient,
  namespace: string,
  timeoutMs = 30_000,
): Promise<void> {
  await createIfMissing(admin, loadCrd());
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const crd = await admin.get<CrdObject>(
      resources.customResourceDefinition,
      undefined,
      "pingpongpairs.pingpong.dev",
    );
    if (crd?.status?.conditions?.some((c) => c.type === "Established" && c.status === "True")) break;
    if (Date.now() > deadline) throw new Error("the PingPongPair CRD was not established in time");
    await new Promise((r) => setTimeout(r, 100));
  }
  await createIfMissing(admin, { apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } });
  for (const object of rbacObjects(namespace)) await createIfMissing(admin, object);
}

type Kubectl = (...args: string[]) => Promise<string>;

/** Resolves once the operator's Deployment has rolled out (its new pod Ready). */
export async function operatorRolledOut(kubectl: Kubectl, timeoutSeconds = 180): Promise<void> {
  await kubectl(
    "-n",
    "pingpong-system",
    "rollout",
    "status",
    "deployment/pingpong-operator",
    `--timeout=${timeoutSeconds}s`,
  );
}

/**
 * Installs config/default as a user would (`kubectl apply --server-side -k`), with `operatorFlags`
 * added to the operator's arguments when given, and waits until the operator's pod is Ready.
 */
export async function installConfigDefault(
  kubectl: Kubectl,
  operatorFlags: readonly string[] = [],
): Promise<void> {
  await kubectl("apply", "--server-side", "-k", join(projectRoot(), "config", "default"));
  if (operatorFlags.length > 0) {
    const patch = operatorFlags.map((value) => ({
      op: "add",
      path: "/spec/template/spec/containers/0/args/-",
      value,
    }));
    await kubectl(
      "-n",
      "pingpong-system",
      "patch",
      "deployment",
      "pingpong-operator",
      "--type",
      "json",
      "-p",
      JSON.stringify(patch),
    );
  }
  await operatorRolledOut(kubectl);
}
