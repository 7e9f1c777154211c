import { createServer, type Server } from "node:http";
import type { KubernetesObject } from "@kubernetes/client-node";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ControlPlane } from "../../controlplane/control-plane.ts";
import { startTestControlPlane, testNamespace } from "../../controlplane/testing.ts";
import { metricValue } from "../../workloads/testing/tls-client.ts";
import { type ClusterConnection, connectionFromKubeconfig } from "./cluster-connection.ts";
import { KubeApiError, KubeClient } from "./kube-client.ts";
import { resources } from "./resources.ts";

let plane: ControlPlane | undefined;
let admin: ClusterConnection;

beforeAll(async () => {
  plane = await startTestControlPlane();
  admin = await connectionFromKubeconfig(plane.adminKubeconfig());
}, 120_000);
afterAll(async () => {
  await plane?.stop();
});

describe("KubeClient against the API server", () => {
  it("lists in pages and returns every object with its kind", async () => {
    const registry = new Registry();
    const client = new KubeClient(admin, registry, { listPageSize: 2 });
    const namespace = testNamespace("paging");
    await client.create({
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: namespace },
    });
    for (let i = 0; i < 5; i++) {
      await client.create({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: `page-${i}`, namespace, labels: { paged: "yes" } },
      });
    }
    const listed = await client.list<KubernetesObject>(resources.configMap, namespace, "paged=yes");
    expect(listed.items.map((c) => c.metadata?.name).sort()).toEqual([
      "page-0",
      "page-1",
      "page-2",
      "page-3",
      "page-4",
    ]);
    expect(listed.items.every((c) => c.kind === "ConfigMap" && c.apiVersion === "v1")).toBe(true);
    expect(listed.resourceVersion).not.toBe("");
    // Five objects in pages of two: three requests.
    const text = await registry.metrics();
    expect(
      metricValue(text, 'pingpong_operator_api_requests_total{verb="list",resource="configmaps",code="200"}'),
    ).toBe(3);
    await client.close();
  });
});

describe("KubeClient against something in front of the API server", () => {
  let proxy: Server;
  let client: KubeClient;
  let registry: Registry;

  beforeAll(async () => {
    // A proxy that answers every request with an HTML error page.
    proxy = createServer((_request, response) => {
      response.writeHead(502, { "content-type": "text/html" }).end("<html><body>Bad Gateway</body></html>");
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    const address = proxy.address();
    const port = typeof address === "object" && address ? address.port : 0;
    registry = new Registry();
    client = new KubeClient(
      { server: `http://127.0.0.1:${port}`, headers: () => Promise.resolve({}) },
      registry,
    );
  });
  afterAll(async () => {
    await client.close();
    await new Promise((resolve) => proxy.close(resolve));
  });

  it("keeps the HTTP status of an error that is not JSON, and its text", async () => {
    const failure = await client.get(resources.configMap, "default", "x").catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(KubeApiError);
    expect((failure as KubeApiError).status).toBe(502);
    expect((failure as KubeApiError).message).toContain("Bad Gateway");
  });

  it("counts a watch that did not start by its status, not as started", async () => {
    await expect(client.watch(resources.configMap, "default", {}, () => undefined)).rejects.toThrow(/502/);
    const text = await registry.metrics();
    expect(
      metricValue(
        text,
        'pingpong_operator_api_requests_total{verb="watch",resource="configmaps",code="502"}',
      ),
    ).toBe(1);
    expect(text).not.toContain('code="started"');
  });
});
