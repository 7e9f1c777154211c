import { describe, expect, it } from "vitest";
import { placementSchemas } from "./placement-schema.ts";

const ref = (name: string) => ({ allOf: [{ $ref: `#/components/schemas/${name}` }] });
const document = (podSpec: Record<string, unknown>, more: Record<string, unknown> = {}) => ({
  components: { schemas: { "io.k8s.api.core.v1.PodSpec": { properties: podSpec }, ...more } },
});
const fields = {
  nodeSelector: { type: "object", additionalProperties: { type: "string", default: "" } },
  tolerations: {
    type: "array",
    "x-kubernetes-list-type": "atomic",
    items: { ...ref("Toleration"), default: {} },
  },
  affinity: { ...ref("Affinity"), description: "the pod's scheduling constraints" },
  topologySpreadConstraints: { type: "array", items: { type: "object" } },
  priorityClassName: { type: "string" },
};

describe("the placement fields' schema, from PodSpec's", () => {
  it("inlines the types it refers to, described where they are used, without what CRDs refuse", () => {
    const schemas = placementSchemas(
      document(fields, {
        Toleration: { type: "object", properties: { key: { type: "string" } } },
        Affinity: {
          type: "object",
          description: "Affinity is a group of affinity scheduling rules.",
          properties: {
            podAntiAffinity: { ...ref("Terms"), description: "anti-affinity" },
          },
        },
        Terms: {
          type: "array",
          items: { type: "string" },
          "x-kubernetes-patch-strategy": "merge",
          "x-kubernetes-list-type": "atomic",
        },
      }),
    );
    expect(schemas.affinity).toEqual({
      type: "object",
      description: "the pod's scheduling constraints",
      properties: {
        podAntiAffinity: {
          type: "array",
          items: { type: "string" },
          "x-kubernetes-list-type": "atomic",
          description: "anti-affinity",
        },
      },
    });
    // Defaults are left out: a pair passes placement to its pods as written.
    expect(schemas.tolerations.items).toEqual({ type: "object", properties: { key: { type: "string" } } });
    expect(schemas.nodeSelector).toEqual({ type: "object", additionalProperties: { type: "string" } });
  });

  it("says what is missing or cannot be held", () => {
    expect(() => placementSchemas({})).toThrow(/no io.k8s.api.core.v1.PodSpec/);
    expect(() => placementSchemas(document({ ...fields, priorityClassName: undefined }))).toThrow(
      /the OpenAPI document has no schema Toleration/,
    );
    const looped = document(fields, {
      Toleration: { type: "object" },
      Affinity: { type: "object", properties: { again: ref("Affinity") } },
    });
    expect(() => placementSchemas(looped)).toThrow(/Affinity refers to itself/);
  });
});
