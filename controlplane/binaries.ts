/**
 * Finds the control-plane binaries. The envtest conventions come first, so people who already have
 * binaries are not made to build: TEST_ASSET_<NAME>, then KUBEBUILDER_ASSETS/<name>. Then the cache
 * hack/controlplane/build.sh fills (~/.cache/pingpong/controlplane/<version>/bin), then PATH.
 */
import { accessSync, constants, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, join } from "node:path";
import { projectRoot } from "../lib/repo.ts";

export interface ControlPlaneBinaries {
  readonly etcd: string;
  readonly kubeApiserver: string;
  readonly kubeControllerManager: string;
  readonly kubectl: string;
}

type Env = Readonly<Record<string, string | undefined>>;

export class MissingBinaryError extends Error {
  override readonly name = "MissingBinaryError";
}

/** The `NAME=vX.Y.Z` line of hack/<folder>/versions.env. */
function pinnedVersion(folder: string, name: string): string {
  const text = readFileSync(join(projectRoot(), "hack", folder, "versions.env"), "utf8");
  const version = new RegExp(`^${name}=(v[0-9.]+)\\s*$`, "m").exec(text)?.[1];
  if (!version) throw new Error(`hack/${folder}/versions.env has no ${name}=vX.Y.Z line`);
  return version;
}

/** The Kubernetes version hack/controlplane/versions.env pins. */
export function pinnedKubernetesVersion(): string {
  return pinnedVersion("controlplane", "KUBERNETES_VERSION");
}

/** Where hack/ keeps what it builds: ~/.cache/pingpong unless PINGPONG_CACHE_DIR or XDG_CACHE_HOME say otherwise. */
export function cacheRoot(env: Env = process.env): string {
  return env.PINGPONG_CACHE_DIR ?? join(env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "pingpong");
}

export function binaryCacheDir(env: Env = process.env): string {
  return join(cacheRoot(env), "controlplane", pinnedKubernetesVersion(), "bin");
}

export function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function find(name: string, assetVariable: string, env: Env): string | undefined {
  const candidates = [
    env[assetVariable],
    env.KUBEBUILDER_ASSETS ? join(env.KUBEBUILDER_ASSETS, name) : undefined,
    join(binaryCacheDir(env), name),
    ...(env.PATH ?? "")
      .split(delimiter)
      .filter(Boolean)
      .map((dir) => join(dir, name)),
  ];
  return candidates.find((path): path is string => path !== undefined && path !== "" && executable(path));
}

export function findBinaries(env: Env = process.env): ControlPlaneBinaries {
  const wanted = {
    etcd: ["etcd", "TEST_ASSET_ETCD"],
    kubeApiserver: ["kube-apiserver", "TEST_ASSET_KUBE_APISERVER"],
    kubeControllerManager: ["kube-controller-manager", "TEST_ASSET_KUBE_CONTROLLER_MANAGER"],
    kubectl: ["kubectl", "TEST_ASSET_KUBECTL"],
  } as const;
  const found: Partial<Record<keyof ControlPlaneBinaries, string>> = {};
  const missing: string[] = [];
  for (const [key, [name, variable]] of Object.entries(wanted) as [
    keyof ControlPlaneBinaries,
    readonly [string, string],
  ][]) {
    const path = find(name, variable, env);
    if (path) found[key] = path;
    else missing.push(name);
  }
  if (missing.length > 0) {
    throw new MissingBinaryError(
      `control-plane binaries not found: ${missing.join(", ")}.\n` +
        "Get them with `make controlplane` (installs Debian's etcd-server and builds kube-apiserver,\n" +
        `kube-controller-manager and kubectl ${pinnedKubernetesVersion()} into ${binaryCacheDir(env)}; the first build takes\n` +
        "5-25 minutes), or point KUBEBUILDER_ASSETS at a folder holding them, or set\n" +
        "TEST_ASSET_ETCD / TEST_ASSET_KUBE_APISERVER / TEST_ASSET_KUBE_CONTROLLER_MANAGER / TEST_ASSET_KUBECTL.",
    );
  }
  return found as ControlPlaneBinaries;
}

/** Image archives every local node loads into its containerd (hack/images/ writes them). */
export function nodeImagesDir(env: Env = process.env): string {
  return join(cacheRoot(env), "images", "node");
}

/** CoreDNS's version, from hack/node/versions.env: its image is named after it. */
export function pinnedCorednsVersion(): string {
  return pinnedVersion("node", "COREDNS_VERSION");
}

/** kube-router's version, from hack/node/versions.env. */
export function pinnedKubeRouterVersion(): string {
  return pinnedVersion("node", "KUBE_ROUTER_VERSION");
}

/** Where hack/node/build-kube-router.sh (hack/node/go-install.sh) puts kube-router. */
export function kubeRouterBinary(env: Env = process.env): string {
  return join(cacheRoot(env), "kube-router", pinnedKubeRouterVersion(), "kube-router");
}
