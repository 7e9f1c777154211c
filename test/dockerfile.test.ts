/**
 * There is no Docker engine here, so the Dockerfile is checked as far as it can be without one: its
 * stages are parsed and their properties asserted, every path it copies must exist and not be
 * excluded by .dockerignore, and the runtime stage's /app is assembled the way the Dockerfile does it
 * (tsc with tsconfig.build.json, `npm ci --omit=dev`, package.json) and run through its entrypoint.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { cp, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { freePort } from "../lib/ports.ts";
import { projectRoot } from "../lib/repo.ts";
import { CliProcess } from "../workloads/testing/processes.ts";

const run = promisify(execFile);
const root = projectRoot();

interface Instruction {
  keyword: string;
  args: string;
}

interface Stage {
  image: string;
  name?: string;
  instructions: Instruction[];
}

/** Stages of a Dockerfile: continuation lines joined, comments dropped, FROM's ARGs substituted. */
function parseDockerfile(text: string): Stage[] {
  const lines = text
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const line of lines) {
    const [, keyword = "", rest = ""] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    const instruction = { keyword: keyword.toUpperCase(), args: rest };
    if (instruction.keyword === "ARG" && stages.length === 0) {
      const [name = "", value = ""] = rest.split("=", 2);
      args.set(name, value);
    } else if (instruction.keyword === "FROM") {
      const [image = "", as, name] = rest.split(/\s+/);
      const resolved = image.replace(/\$\{(\w+)\}/g, (_, arg: string) => args.get(arg) ?? "");
      stages.push({ image: resolved, name: as?.toUpperCase() === "AS" ? name : undefined, instructions: [] });
    } else {
      stages.at(-1)?.instructions.push(instruction);
    }
  }
  return stages;
}

function instructions(stage: Stage, keyword: string): string[] {
  return stage.instructions.filter((i) => i.keyword === keyword).map((i) => i.args);
}

interface Copy {
  from?: string;
  sources: string[];
  destination: string;
}

function copies(stage: Stage): Copy[] {
  return instructions(stage, "COPY").map((args) => {
    const words = args.split(/\s+/);
    const from = words.find((w) => w.startsWith("--from="))?.slice("--from=".length);
    const paths = words.filter((w) => !w.startsWith("--"));
    return { from, sources: paths.slice(0, -1), destination: paths.at(-1) ?? "" };
  });
}

const dockerfile = parseDockerfile(await readFile(join(root, "Dockerfile"), "utf8"));
const runtime = dockerfile.at(-1) as Stage;
const stage = (name: string) => dockerfile.find((s) => s.name === name);

describe("Dockerfile", () => {
  it("builds on Node 24 and runs on a minimal Node 24 image", () => {
    expect(dockerfile.length).toBeGreaterThanOrEqual(2);
    for (const build of dockerfile.slice(0, -1)) expect(build.image).toMatch(/^node:24(\.[\d.]+)?-\w+-slim$/);
    expect(runtime.image).toMatch(/^(gcr\.io\/distroless\/nodejs24-debian\d+:nonroot|node:24[\w.-]*-slim)$/);
    // No shell in distroless: the runtime stage only copies.
    expect(instructions(runtime, "RUN")).toEqual([]);
  });

  it("ships production dependencies only", () => {
    const installs = dockerfile.flatMap((s) => instructions(s, "RUN")).filter((r) => r.includes("npm ci"));
    const modules = copies(runtime).find((c) => c.destination === "node_modules");
    expect(modules?.from).toBeDefined();
    const source = stage(modules?.from ?? "");
    expect(instructions(source as Stage, "RUN").join(" ")).toContain("npm ci --omit=dev");
    expect(installs.length).toBe(2);
  });

  it("runs as a numeric non-root user with the pingpong entry point (bundled CLI) as its entrypoint", () => {
    const [user] = instructions(runtime, "USER");
    expect(user).toMatch(/^\d+(:\d+)?$/);
    expect(Number(user?.split(":")[0])).toBeGreaterThan(0);
    const entrypoint = JSON.parse(instructions(runtime, "ENTRYPOINT")[0] ?? "null") as string[];
    expect(entrypoint).toEqual(["/nodejs/bin/node", "/app/dist/pingpong.cjs"]);
    expect(instructions(runtime, "WORKDIR")).toEqual(["/app"]);
  });

  it("copies only paths that exist and that .dockerignore lets into the build context", async () => {
    const ignored = (await readFile(join(root, ".dockerignore"), "utf8"))
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith("#"));
    const fromContext = dockerfile.flatMap((s) => copies(s).filter((c) => !c.from)).flatMap((c) => c.sources);
    expect(fromContext.length).toBeGreaterThan(0);
    for (const source of fromContext) {
      expect(existsSync(join(root, source)), `${source} exists`).toBe(true);
      expect(ignored, `${source} is not in .dockerignore`).not.toContain(source);
    }
    // Everything tsconfig.build.json compiles reaches the build stage.
    const build = JSON.parse(await readFile(join(root, "tsconfig.build.json"), "utf8")) as {
      include: string[];
    };
    const built = copies(stage("build") as Stage).flatMap((c) => c.sources);
    for (const path of [...build.include, "tsconfig.json", "tsconfig.build.json"])
      expect(built).toContain(path);
    // And what the runtime stage takes from other stages is what they produce.
    for (const copy of copies(runtime).filter((c) => c.from))
      expect(["/src/dist", "/src/node_modules"]).toEqual(expect.arrayContaining(copy.sources));
  });

  it("the app assembled as the Dockerfile does runs the ponger, pinger and operator", async () => {
    // The runtime stage's /app, built from its COPY lines: files from the context as they are, the
    // other stages' outputs the way those stages make them.
    const app = await mkdtemp(join(tmpdir(), "image-app-"));
    const work = await mkdtemp(join(tmpdir(), "image-stages-"));
    try {
      for (const file of ["package.json", "package-lock.json"]) await cp(join(root, file), join(work, file));
      await run(
        "npm",
        ["ci", "--omit=dev", "--ignore-scripts", "--prefer-offline", "--no-audit", "--no-fund"],
        {
          cwd: work,
        },
      );
      // The build stage's `npm run build`, into this folder.
      await run(process.execPath, [
        join(root, "node_modules/typescript/bin/tsc"),
        "-p",
        join(root, "tsconfig.build.json"),
        "--outDir",
        join(work, "dist"),
      ]);
      await run(
        process.execPath,
        [
          join(root, "node_modules/rolldown/bin/cli.mjs"),
          "-c",
          join(root, "rolldown.config.ts"),
          "--dir",
          join(work, "dist"),
        ],
        { cwd: root },
      );
      const stageOutputs: Record<string, string> = {
        "/src/node_modules": join(work, "node_modules"),
        "/src/dist": join(work, "dist"),
      };
      for (const copy of copies(runtime))
        for (const source of copy.sources) {
          const from = copy.from ? stageOutputs[source] : join(root, source);
          if (!from) throw new Error(`no output known for COPY --from=${copy.from ?? ""} ${source}`);
          const target = join(app, copy.destination);
          await cp(from, copy.destination.endsWith("/") ? join(target, basename(source)) : target, {
            recursive: true,
          });
        }
      expect(existsSync(join(app, "node_modules", "typescript"))).toBe(false);
      expect(existsSync(join(app, "node_modules", "pino"))).toBe(true);
      // What the image's ENTRYPOINT runs.
      const cli = join(app, "dist", "pingpong.cjs");
      const env = { NODE_ENV: "production" };

      const [port, metricsPort] = [await freePort(), await freePort()];
      const ponger = new CliProcess(
        ["ponger"],
        {
          ...env,
          PINGPONG_SERVICE_PROTOCOL: "http",
          PINGPONG_SERVICE_ADDRESS: "127.0.0.1",
          PINGPONG_SERVICE_PORT: String(port),
          PINGPONG_METRICS_ADDRESS: "127.0.0.1",
          PINGPONG_METRICS_PORT: String(metricsPort),
        },
        cli,
      );
      try {
        const url = await ponger.logged("Ponger listening", "url");
        expect(await (await fetch(url)).text()).toBe("pong");
      } finally {
        expect(await ponger.stop("SIGTERM")).toBe(0);
      }

      const pinger = await run(process.execPath, [cli, "pinger", "--help"], {
        env: { ...process.env, ...env },
      });
      expect(pinger.stdout).toContain("ponger.url");
      // The operator loads all of its modules before it reads the kubeconfig.
      const operator = new CliProcess(
        ["operator", "--kubeconfig", join(app, "missing-kubeconfig")],
        env,
        cli,
      );
      expect(await operator.exited()).toBe(2);
      expect(operator.stderr).toContain("missing-kubeconfig");
      expect(operator.stderr).not.toContain("ERR_MODULE_NOT_FOUND");
    } finally {
      await rm(app, { recursive: true, force: true });
      await rm(work, { recursive: true, force: true });
    }
  });
});
