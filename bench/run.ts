/**
 * `npm run bench [name...]`: runs the named benchmarks (all by default) and prints one line per
 * measurement. Targets are in ../../shared/DESIGN.md; benchmarks measure, they do not fail.
 */
import { benchAbuse } from "./abuse.ts";
import { benchControlPlane } from "./controlplane.ts";
import { benchEndToEnd } from "./e2e.ts";
import { benchHealth } from "./health.ts";
import { benchNode } from "./node.ts";
import { benchOperator } from "./operator.ts";
import { benchPki } from "./pki.ts";
import { benchWorkloads } from "./workloads.ts";

const benches: Record<string, () => Promise<void>> = {
  pki: benchPki,
  controlplane: benchControlPlane,
  node: benchNode,
  operator: benchOperator,
  health: benchHealth,
  e2e: benchEndToEnd,
  workloads: benchWorkloads,
  abuse: benchAbuse,
};

const wanted = process.argv.slice(2);
const unknown = wanted.filter((name) => !(name in benches));
if (unknown.length > 0) {
  console.error(
    `unknown benchmark(s): ${unknown.join(", ")}; choose from ${Object.keys(benches).join(", ")}`,
  );
  process.exit(2);
}
console.log(`node ${process.version}, ${process.platform}/${process.arch}`);
for (const [name, bench] of Object.entries(benches)) {
  if (wanted.length === 0 || wanted.includes(name)) await bench();
}
