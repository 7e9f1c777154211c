import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  connectionFromKubeconfig,
  defaultConnection,
  inClusterConnection,
  KubeconfigError,
} from "./cluster-connection.ts";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "connection-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const b64 = (text: string) => Buffer.from(text).toString("base64");

function kubeconfig(
  user: Record<string, unknown>,
  cluster: Record<string, unknown> = {},
  namespace?: string,
): string {
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      {
        name: "c",
        cluster: {
          server: "https://10.1.2.3:6443/",
          "certificate-authority-data": b64("CA PEM"),
          ...cluster,
        },
      },
    ],
    users: [{ name: "u", user }],
    contexts: [{ name: "ctx", context: { cluster: "c", user: "u", ...(namespace ? { namespace } : {}) } }],
    "current-context": "ctx",
  });
}

describe("connectionFromKubeconfig", () => {
  it("reads the current context's server, CA, namespace and bearer token", async () => {
    const connection = await connectionFromKubeconfig(kubeconfig({ token: "abc" }, {}, "team-a"));
    expect(connection.server).toBe("https://10.1.2.3:6443");
    expect(connection.ca).toBe("CA PEM");
    expect(connection.namespace).toBe("team-a");
    expect(await connection.headers()).toEqual({ authorization: "Bearer abc" });
  });

  it("reads client certificates from data or from files", async () => {
    await writeFile(join(dir, "client.crt"), "CERT FILE");
    const fromData = await connectionFromKubeconfig(
      kubeconfig({ "client-certificate-data": b64("CERT"), "client-key-data": b64("KEY") }),
    );
    expect([fromData.cert, fromData.key]).toEqual(["CERT", "KEY"]);
    expect(await fromData.headers()).toEqual({});
    const fromFile = await connectionFromKubeconfig(
      kubeconfig({ "client-certificate": join(dir, "client.crt"), "client-key-data": b64("KEY") }),
    );
    expect(fromFile.cert).toBe("CERT FILE");
  });

  it("reads a token file, not once but again as it is rotated", async () => {
    await writeFile(join(dir, "token"), "first\n");
    const connection = await connectionFromKubeconfig(kubeconfig({ tokenFile: join(dir, "token") }));
    expect(await connection.headers()).toEqual({ authorization: "Bearer first" });
  });

  it("keeps TLS settings", async () => {
    const connection = await connectionFromKubeconfig(
      kubeconfig({ token: "t" }, { "insecure-skip-tls-verify": true, "tls-server-name": "api.internal" }),
    );
    expect(connection.insecureSkipTlsVerify).toBe(true);
    expect(connection.tlsServerName).toBe("api.internal");
  });

  it("says what is wrong with a kubeconfig it cannot use", async () => {
    const broken = stringify({ contexts: [], "current-context": "gone" });
    await expect(connectionFromKubeconfig(broken, "/etc/kube.yaml")).rejects.toThrow(
      /\/etc\/kube\.yaml: current-context "gone" is not one of its contexts/,
    );
  });
});

describe("inClusterConnection", () => {
  it("uses the ServiceAccount files and the service environment", async () => {
    await writeFile(join(dir, "token"), "sa-token");
    await writeFile(join(dir, "ca.crt"), "CLUSTER CA");
    await writeFile(join(dir, "namespace"), "pingpong-system\n");
    const connection = inClusterConnection(
      { KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" },
      dir,
    );
    expect(connection.server).toBe("https://10.96.0.1:443");
    expect(connection.ca).toBe("CLUSTER CA");
    expect(connection.namespace).toBe("pingpong-system");
    expect(await connection.headers()).toEqual({ authorization: "Bearer sa-token" });
    expect(inClusterConnection({ KUBERNETES_SERVICE_HOST: "fd00::1" }, dir).server).toBe(
      "https://[fd00::1]:443",
    );
  });

  it("explains that there is neither a kubeconfig nor a cluster", () => {
    expect(() => inClusterConnection({}, dir)).toThrow(KubeconfigError);
    expect(() => inClusterConnection({}, dir)).toThrow(/KUBERNETES_SERVICE_HOST is unset/);
  });
});

describe("defaultConnection", () => {
  it("takes the first file of KUBECONFIG, as kubectl does", async () => {
    await writeFile(join(dir, "a"), kubeconfig({ token: "from-a" }));
    const connection = await defaultConnection(undefined, {
      KUBECONFIG: `${join(dir, "missing")}:${join(dir, "a")}`,
      HOME: dir,
    });
    expect(await connection.headers()).toEqual({ authorization: "Bearer from-a" });
  });

  it("fails clearly for an explicit file it cannot read", async () => {
    await expect(defaultConnection(join(dir, "nope"))).rejects.toThrow(/cannot read kubeconfig .*nope/);
  });
});
