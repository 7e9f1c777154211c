/**
 * The configuration files and cluster objects of the local node, as pure functions of its network
 * and paths: containerd's config, the CNI network, the kubelet's and kube-proxy's configurations,
 * and CoreDNS. Settings that matter on these machines are explained where they are set.
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import { stringify } from "yaml";
import type { NodeNetwork } from "./node-network.ts";

export const nodeName = "pingpong-node";
export const pauseImage = "registry.k8s.io/pause:3.10.1";
export const clusterDomain = "cluster.local";

export interface ContainerdPaths {
  readonly root: string;
  readonly state: string;
  readonly socket: string;
  readonly opt: string;
  readonly cniConfDir: string;
}

export function containerdConfig(paths: ContainerdPaths): string {
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  return `version = 2
root = "${paths.root}"
state = "${paths.state}"
# Nothing but the CRI and what it needs; no snapshotters this kernel lacks.
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "${paths.socket}"

[plugins."io.containerd.internal.v1.opt"]
  path = "${paths.opt}"

[${cri}]
  sandbox_image = "${pauseImage}"
  # Root here lacks CAP_SYS_RESOURCE: without this every sandbox fails with "can't get final
  # child's PID from pipe: EOF" (runc cannot lower /proc/self/oom_score_adj).
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[${cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[${cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[${cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false

[${cri}.cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "${paths.cniConfDir}"
  max_conf_num = 1
`;
}

/**
 * The pods' network: veths on our bridge, addresses from host-local. isGateway and ipMasq stay off:
 * the gateway address is on the bridge already, the global ip_forward is never switched on, and
 * nothing is masqueraded.
 */
export function cniConfig(network: NodeNetwork, ipamDataDir: string): string {
  return JSON.stringify(
    {
      cniVersion: "1.0.0",
      name: "pingpong",
      plugins: [
        {
          type: "bridge",
          bridge: network.bridge,
          isGateway: false,
          ipMasq: false,
          hairpinMode: true,
          ipam: {
            type: "host-local",
            dataDir: ipamDataDir,
            ranges: [[{ subnet: network.podCidr, gateway: network.gateway }]],
            routes: [{ dst: "0.0.0.0/0", gw: network.gateway }],
          },
        },
      ],
    },
    null,
    2,
  );
}

export interface KubeletPaths {
  readonly containerdSocket: string;
  readonly resolvConf: string;
  readonly podLogsDir: string;
  readonly volumePluginDir: string;
  readonly clientCaFile: string;
  readonly tlsCertFile: string;
  readonly tlsPrivateKeyFile: string;
}

export function kubeletConfig(network: NodeNetwork, paths: KubeletPaths, port: number): string {
  return stringify({
    apiVersion: "kubelet.config.k8s.io/v1beta1",
    kind: "KubeletConfiguration",
    // 1.35 refuses cgroup v1 unless told; these machines mount v1 hierarchies.
    failCgroupV1: false,
    cgroupDriver: "cgroupfs",
    containerRuntimeEndpoint: `unix://${paths.containerdSocket}`,
    // Pods get cluster DNS only: an empty resolv.conf, never the machine's resolvers.
    resolvConf: paths.resolvConf,
    clusterDNS: [network.dnsServiceIp],
    clusterDomain,
    failSwapOn: false,
    // Secret volume updates reach pods in about 11 s instead of 41-85 s with the 1m default.
    syncFrequency: "10s",
    address: network.nodeIp,
    port,
    readOnlyPort: 0,
    healthzPort: 0,
    podLogsDir: paths.podLogsDir,
    volumePluginDir: paths.volumePluginDir,
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: true },
      x509: { clientCAFile: paths.clientCaFile },
    },
    authorization: { mode: "Webhook" },
    tlsCertFile: paths.tlsCertFile,
    tlsPrivateKeyFile: paths.tlsPrivateKeyFile,
    serializeImagePulls: false,
    // A development node on a shared disk: evict only when the disk is really full, and never
    // collect the images loaded at start (nothing can be pulled again here).
    evictionHard: { "memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%" },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    shutdownGracePeriod: "0s",
  });
}

export interface KubeProxyPaths {
  readonly kubeconfig: string;
}

export function kubeProxyConfig(
  network: NodeNetwork,
  paths: KubeProxyPaths,
  ports: { healthz: number; metrics: number },
): string {
  return stringify({
    apiVersion: "kubeproxy.config.k8s.io/v1alpha1",
    kind: "KubeProxyConfiguration",
    mode: "nftables",
    hostnameOverride: nodeName,
    clientConnection: { kubeconfig: paths.kubeconfig },
    clusterCIDR: network.clusterCidr,
    // Loopback only, on ports of our own (the defaults are 0.0.0.0:10256 and 127.0.0.1:10249).
    healthzBindAddress: `127.0.0.1:${ports.healthz}`,
    metricsBindAddress: `127.0.0.1:${ports.metrics}`,
    // NodePorts only on the node's own address, never on the machine's other interfaces.
    nodePortAddresses: [`${network.nodeIp}/32`],
    // Zeros leave the machine's conntrack settings as they are.
    conntrack: {
      maxPerCore: 0,
      min: 0,
      tcpEstablishedTimeout: "0s",
      tcpCloseWaitTimeout: "0s",
      udpTimeout: "0s",
      udpStreamTimeout: "0s",
    },
  });
}

const corefile = `.:1053 {
    errors
    health :8080
    ready :8181
    kubernetes ${clusterDomain} in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    cache 30
    loadbalance
}
`;

/**
 * CoreDNS in kube-system behind the Service the kubelet's clusterDNS names. It answers for the
 * cluster only: no `forward` plugin, so no name is ever resolved outside this machine. It listens on
 * 1053 so that it runs as non-root without capabilities.
 */
export function corednsObjects(network: NodeNetwork, image: string): KubernetesObject[] {
  const namespace = "kube-system";
  const labels = { "k8s-app": "kube-dns" };
  return [
    { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "coredns", namespace } },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name: "system:coredns" },
      rules: [
        {
          apiGroups: [""],
          resources: ["endpoints", "services", "pods", "namespaces"],
          verbs: ["list", "watch"],
        },
        { apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: ["list", "watch"] },
      ],
    } as KubernetesObject,
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: "system:coredns" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "system:coredns" },
      subjects: [{ kind: "ServiceAccount", name: "coredns", namespace }],
    } as KubernetesObject,
    {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "coredns", namespace },
      data: { Corefile: corefile },
    } as KubernetesObject,
    {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "coredns", namespace, labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: "coredns",
            priorityClassName: "system-cluster-critical",
            dnsPolicy: "Default",
            securityContext: {
              runAsNonRoot: true,
              runAsUser: 65532,
              runAsGroup: 65532,
              seccompProfile: { type: "RuntimeDefault" },
            },
            containers: [
              {
                name: "coredns",
                image,
                imagePullPolicy: "IfNotPresent",
                args: ["-conf", "/etc/coredns/Corefile"],
                ports: [
                  { name: "dns", containerPort: 1053, protocol: "UDP" },
                  { name: "dns-tcp", containerPort: 1053, protocol: "TCP" },
                ],
                readinessProbe: { httpGet: { path: "/ready", port: 8181 }, periodSeconds: 2 },
                livenessProbe: { httpGet: { path: "/health", port: 8080 }, periodSeconds: 10 },
                resources: { requests: { cpu: "50m", memory: "32Mi" }, limits: { memory: "128Mi" } },
                securityContext: {
                  allowPrivilegeEscalation: false,
                  readOnlyRootFilesystem: true,
                  capabilities: { drop: ["ALL"] },
                },
                volumeMounts: [{ name: "config", mountPath: "/etc/coredns", readOnly: true }],
              },
            ],
            volumes: [{ name: "config", configMap: { name: "coredns" } }],
          },
        },
      },
    } as KubernetesObject,
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "kube-dns", namespace, labels },
      spec: {
        clusterIP: network.dnsServiceIp,
        selector: labels,
        ports: [
          { name: "dns", port: 53, targetPort: 1053, protocol: "UDP" },
          { name: "dns-tcp", port: 53, targetPort: 1053, protocol: "TCP" },
        ],
      },
    } as KubernetesObject,
  ];
}

/** The user kube-router authenticates as (a static token of the control plane's). */
export const kubeRouterUser = "system:pingpong:kube-router";

/**
 * What kube-router's network-policy controller may read: it starts informers for all of these,
 * whichever of its controllers run. It writes nothing to the API.
 */
export function kubeRouterRbac(): KubernetesObject[] {
  const name = "pingpong:kube-router";
  return [
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name },
      rules: [
        {
          apiGroups: [""],
          resources: ["pods", "namespaces", "nodes", "services", "endpoints"],
          verbs: ["get", "list", "watch"],
        },
        { apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: ["get", "list", "watch"] },
        { apiGroups: ["networking.k8s.io"], resources: ["networkpolicies"], verbs: ["get", "list", "watch"] },
      ],
    } as KubernetesObject,
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name },
      subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: kubeRouterUser }],
    } as KubernetesObject,
  ];
}

/**
 * kube-router with its firewall (the network-policy controller) alone: no routing, no service proxy
 * (kube-proxy does that), no health or metrics port (nothing listens on the machine for it).
 */
export function kubeRouterArgs(network: NodeNetwork, kubeconfig: string): string[] {
  return [
    `--kubeconfig=${kubeconfig}`,
    `--hostname-override=${nodeName}`,
    "--run-firewall=true",
    "--run-router=false",
    "--run-service-proxy=false",
    "--enable-ipv6=false",
    `--service-cluster-ip-range=${network.serviceCidr}`,
    "--health-port=0",
    "--metrics-port=0",
    "--v=1",
  ];
}
