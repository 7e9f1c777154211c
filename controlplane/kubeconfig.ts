import { stringify } from "yaml";

export interface KubeconfigFields {
  readonly server: string;
  readonly caPem: string;
  readonly token: string;
  readonly user: string;
  readonly namespace?: string;
}

/** A kubeconfig with one cluster, one token user and one context, current. */
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
