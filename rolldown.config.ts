/**
 * `npm run build` bundles the image's entry point (entrypoint.ts) into CommonJS, dist/pingpong.cjs
 * and a chunk each for the ponger and the pinger: they run without the ES module loader or a graph of
 * modules to resolve, and each loads only its own libraries (see entrypoint.ts). `yaml` stays external: it is loaded only for a
 * hand-written YAML config, from the image's node_modules.
 */
import { defineConfig } from "rolldown";

export default defineConfig({
  input: "entrypoint.ts",
  platform: "node",
  external: ["yaml"],
  logLevel: "warn",
  // The ponger's and the pinger's own modules are chunks of their own, loaded by the one that runs.
  output: {
    dir: "dist",
    format: "cjs",
    entryFileNames: "pingpong.cjs",
    chunkFileNames: "chunks/[name]-[hash].cjs",
  },
});
