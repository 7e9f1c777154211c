/** The API resources the operator touches, with what it takes to build their URLs. */

export interface ResourceType {
  readonly apiVersion: string;
  readonly kind: string;
  readonly plural: string;
  readonly namespaced: boolean;
}

const t = (apiVersion: string, kind: string, plural: string, namespaced = true): ResourceType => ({
  apiVersion,
  kind,
  plural,
  namespaced,
});

export const resources = {
  pingPongPair: t("pingpong.dev/v1alpha1", "PingPongPair", "pingpongpairs"),
  secret: t("v1", "Secret", "secrets"),
  configMap: t("v1", "ConfigMap", "configmaps"),
  service: t("v1", "Service", "services"),
  serviceAccount: t("v1", "ServiceAccount", "serviceaccounts"),
  pod: t("v1", "Pod", "pods"),
  event: t("v1", "Event", "events"),
  deployment: t("apps/v1", "Deployment", "deployments"),
  networkPolicy: t("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies"),
  podDisruptionBudget: t("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
  lease: t("coordination.k8s.io/v1", "Lease", "leases"),
  // Used by tools and tests that install the operator, not by the operator itself.
  namespace: t("v1", "Namespace", "namespaces", false),
  node: t("v1", "Node", "nodes", false),
  customResourceDefinition: t(
    "apiextensions.k8s.io/v1",
    "CustomResourceDefinition",
    "customresourcedefinitions",
    false,
  ),
  clusterRole: t("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", false),
  clusterRoleBinding: t("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings", false),
  role: t("rbac.authorization.k8s.io/v1", "Role", "roles"),
  roleBinding: t("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"),
  horizontalPodAutoscaler: t("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
  validatingAdmissionPolicy: t(
    "admissionregistration.k8s.io/v1",
    "ValidatingAdmissionPolicy",
    "validatingadmissionpolicies",
    false,
  ),
  validatingAdmissionPolicyBinding: t(
    "admissionregistration.k8s.io/v1",
    "ValidatingAdmissionPolicyBinding",
    "validatingadmissionpolicybindings",
    false,
  ),
} as const;

export function collectionPath(type: ResourceType, namespace?: string): string {
  const base = type.apiVersion.includes("/") ? `/apis/${type.apiVersion}` : `/api/${type.apiVersion}`;
  return type.namespaced && namespace
    ? `${base}/namespaces/${namespace}/${type.plural}`
    : `${base}/${type.plural}`;
}

export function objectPath(type: ResourceType, namespace: string | undefined, name: string): string {
  return `${collectionPath(type, namespace)}/${encodeURIComponent(name)}`;
}

export function resourceTypeOf(apiVersion: string | undefined, kind: string | undefined): ResourceType {
  const found = Object.values(resources).find((r) => r.apiVersion === apiVersion && r.kind === kind);
  if (!found) throw new Error(`no resource type known for ${apiVersion ?? "?"} ${kind ?? "?"}`);
  return found;
}
