/**
 * Writes the placement fields of spec.ponger and spec.pinger into crds/pingpong.dev_pingpongpairs.yaml,
 * between its `# BEGIN placement` and `# END placement` lines, from the PodSpec schema of the pinned
 * Kubernetes version's OpenAPI document (in the Go module cache once hack/controlplane/build.sh has
 * run). The ponger's copy carries YAML anchors, the pinger's aliases them. The Helm chart's copy of
 * the CRD (charts/pingpong-operator/crds/) is written too.
 *
 *   node hack/crd/update-placement.ts
 */
import { readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { format, resolveConfig } from "prettier";
import { stringify } from "yaml";
import { crdPath } from "../../operator/api/crd.ts";
import { placementFields } from "../../operator/api/types.ts";
import { kubernetesOpenApi, placementSchemas } from "./placement-schema.ts";
import { pinnedKubernetesVersion } from "../../controlplane/binaries.ts";
import { projectRoot } from "../../lib/repo.ts";

const begin = "# BEGIN placement";
const end = "# END placement";

function block(indent: string, anchors: boolean): string {
  const version = pinnedKubernetesVersion();
  const schemas = placementSchemas(kubernetesOpenApi(version));
  const lines = [
    `${indent}${begin}: PodSpec's fields in Kubernetes ${version}'s OpenAPI, written by hack/crd/update-placement.ts`,
  ];
  for (const field of placementFields) {
    if (!anchors) {
      lines.push(`${indent}${field}: *${field}`);
      continue;
    }
    const body = stringify(schemas[field], { lineWidth: 0 })
      .trimEnd()
      .split("\n")
      .map((line) => `${indent}  ${line}`);
    lines.push(`${indent}${field}: &${field}`, ...body);
  }
  lines.push(`${indent}${end}`);
  return lines.join("\n");
}

const path = crdPath();
const lines = readFileSync(path, "utf8").split("\n");
const out: string[] = [];
let copies = 0;
for (let i = 0; i < lines.length; i++) {
  const line = lines[i] ?? "";
  const at = line.indexOf(begin);
  if (at < 0 || line.slice(0, at).trim() !== "") {
    out.push(line);
    continue;
  }
  const indent = line.slice(0, at);
  while (i < lines.length && !(lines[i] ?? "").includes(end)) i++;
  out.push(block(indent, copies === 0));
  copies++;
}
if (copies !== 2) throw new Error(`${path}: expected two ${begin} ... ${end} blocks, found ${copies}`);
const text = await format(out.join("\n"), { ...(await resolveConfig(path)), filepath: path });
writeFileSync(path, text);
writeFileSync(join(projectRoot(), "charts", "pingpong-operator", "crds", basename(path)), text);
console.log(`wrote ${placementFields.join(", ")} into ${path}`);
