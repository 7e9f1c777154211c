/** Reading the shipped CRD: for installing it in tests and tools, and for checking the types against it. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { V1CustomResourceDefinition } from "@kubernetes/client-node";
import { parse } from "yaml";
import { projectRoot } from "../../lib/repo.ts";

export const crdPath = (): string => join(projectRoot(), "crds", "pingpong.dev_pingpongpairs.yaml");

/** The CRD exactly as shipped (YAML anchors resolved). Throws when the file is missing. */
export function loadCrd(): V1CustomResourceDefinition {
  return parse(readFileSync(crdPath(), "utf8"), { maxAliasCount: -1 }) as V1CustomResourceDefinition;
}
