/**
 * The schema of the placement fields of spec.ponger and spec.pinger (nodeSelector, tolerations,
 * affinity, topologySpreadConstraints, priorityClassName), taken from the Kubernetes API server's own
 * OpenAPI document for PodSpec, so a pair accepts exactly what a pod does and `kubectl explain` shows
 * the same words. The document ships with the Kubernetes module the control plane is built from
 * (k8s.io/kubernetes@<version>/api/openapi-spec/v3/api__v1_openapi.json); update-placement.ts writes
 * the result into the CRD, and operator/api/crd.test.ts checks the CRD still holds it. Build tooling:
 * nothing of the product imports it.
 *
 * A CRD schema cannot refer to other types: `$ref`s are inlined, and what CRD schemas refuse is left
 * out: the strategic-merge-patch hints and the defaults (a pair passes placement to its pods as
 * written; the API server defaults the pods).
 */
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { type PlacementField, placementFields } from "../../operator/api/types.ts";

type Json = Record<string, unknown>;

/**
 * Kubernetes `version`'s core/v1 OpenAPI document, from the Go module cache (GOMODCACHE, else
 * $GOPATH/pkg/mod, else ~/go/pkg/mod), where building the control plane put the module.
 */
export function kubernetesOpenApi(version: string, env: NodeJS.ProcessEnv = process.env): unknown {
  const modules = env.GOMODCACHE ?? join(env.GOPATH ?? join(homedir(), "go"), "pkg", "mod");
  const file = join(modules, `k8s.io/kubernetes@${version}`, "api/openapi-spec/v3/api__v1_openapi.json");
  try {
    return JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new Error(
      `cannot read ${file} (${(error as Error).message}): run hack/controlplane/build.sh (make controlplane) first`,
      { cause: error },
    );
  }
}

/** Keys a CRD's structural schema keeps; everything else in the OpenAPI document is dropped. */
const kept = new Set([
  "type",
  "format",
  "description",
  "properties",
  "items",
  "required",
  "enum",
  "additionalProperties",
  "x-kubernetes-list-type",
  "x-kubernetes-list-map-keys",
  "x-kubernetes-map-type",
  "x-kubernetes-int-or-string",
]);

function inline(node: unknown, schemas: Json, seen: readonly string[]): unknown {
  if (Array.isArray(node)) return node.map((n) => inline(n, schemas, seen));
  if (node === null || typeof node !== "object") return node;
  const source = node as Json;
  // `allOf: [{$ref}]` next to a description, or a bare `$ref`: the referred type, described here.
  const ref =
    typeof source.$ref === "string"
      ? source.$ref
      : Array.isArray(source.allOf) && source.allOf.length === 1
        ? ((source.allOf[0] as Json).$ref as string | undefined)
        : undefined;
  let merged: Json = source;
  if (ref !== undefined) {
    const name = ref.replace("#/components/schemas/", "");
    if (seen.includes(name)) throw new Error(`${name} refers to itself: a CRD schema cannot hold it`);
    const target = schemas[name] as Json | undefined;
    if (!target) throw new Error(`the OpenAPI document has no schema ${name}`);
    const { $ref: _ref, allOf: _allOf, ...rest } = source;
    merged = { ...(inline(target, schemas, [...seen, name]) as Json), ...rest };
  }
  const result: Json = {};
  for (const [key, value] of Object.entries(merged)) {
    if (!kept.has(key)) continue;
    if (key === "properties") {
      result.properties = Object.fromEntries(
        Object.entries(value as Json).map(([name, child]) => [name, inline(child, schemas, seen)]),
      );
    } else if (key === "items" || key === "additionalProperties") {
      result[key] = typeof value === "object" ? inline(value, schemas, seen) : value;
    } else {
      result[key] = value;
    }
  }
  return result;
}

/** The five placement fields' schemas, in `placementFields` order, from a core/v1 OpenAPI v3 document. */
export function placementSchemas(openApi: unknown): Record<PlacementField, Json> {
  const schemas = (openApi as { components?: { schemas?: Json } }).components?.schemas ?? {};
  const podSpec = schemas["io.k8s.api.core.v1.PodSpec"] as { properties?: Json } | undefined;
  if (!podSpec?.properties) throw new Error("the OpenAPI document has no io.k8s.api.core.v1.PodSpec");
  const properties = podSpec.properties;
  return Object.fromEntries(
    placementFields.map((field) => {
      if (!(field in properties)) throw new Error(`PodSpec has no ${field}`);
      return [field, inline(properties[field], schemas, []) as Json];
    }),
  ) as Record<PlacementField, Json>;
}
