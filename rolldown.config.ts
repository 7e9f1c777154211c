/**
 * `npm run build` bundles the image's entry point (entrypoint.ts) into one CommonJS file,
 * dist/pingpong.cjs: the ponger and the pinger run from it without the ES module loader or a graph
 * of modules to resolve (see entrypoint.ts). `yaml` stays external: it is loaded only for a
 * hand-written YAML config, from the image's node_modules.
 */
import { defineConfig } from "rolldown";

export default defineConfig({
  input: "entrypoint.ts",
  platform: "node",
  external: ["yaml"],
  logLevel: "warn",
  output: { file: "dist/pingpong.cjs", format: "cjs" },
});
