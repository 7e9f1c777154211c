/**
 * README.md's commands stay true: every `make` target it names exists, and every file or folder of
 * this repository it names is there.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { projectRoot } from "../lib/repo.ts";

const root = projectRoot();
const readme = readFileSync(join(root, "README.md"), "utf8");
const makefile = readFileSync(join(root, "Makefile"), "utf8");

describe("README.md", () => {
  it("names only make targets that the Makefile defines", () => {
    // In code blocks (`    make demo`) and inline (`make demo`).
    const named = new Set([...readme.matchAll(/(?:^ {4}|`)make ([a-z][\w-]*)/gm)].map((m) => m[1]));
    const defined = new Set([...makefile.matchAll(/^([a-z][\w-]*):/gm)].map((m) => m[1]));
    expect(named.size).toBeGreaterThan(5);
    for (const target of named) expect(defined, `make ${target}`).toContain(target);
  });

  it("names only paths that exist", () => {
    const paths = new Set(
      [...readme.matchAll(/\b((?:examples|config|crds|bench|hack|test)\/[\w./-]*)/g)].map((m) =>
        (m[1] ?? "").replace(/[.]$/, ""),
      ),
    );
    expect(paths.size).toBeGreaterThan(5);
    for (const path of paths) expect(existsSync(join(root, path)), path).toBe(true);
  });
});

describe("README.md's demo output", () => {
  /** Every `progress(...)`/`say(...)` template of the demo and the cluster, as a regex. */
  function printedTemplates(): RegExp[] {
    const sources = ["controlplane/demo.ts", "controlplane/control-plane.ts", "controlplane/node.ts"].map(
      (f) => readFileSync(join(root, f), "utf8"),
    );
    const literals = sources.flatMap((text) =>
      [...text.matchAll(/progress\(\s*(`[^`]*`|"[^"]*")/g)].map((m) => m[1] ?? ""),
    );
    return literals.map((literal) => {
      const body = literal.slice(1, -1);
      const pattern = body
        .split(/\$\{[^}]*\}/)
        .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
        .join(".+");
      return new RegExp(`^${pattern}$`);
    });
  }

  it("shows only progress lines the demo and the cluster really print", () => {
    const shown = [...readme.matchAll(/^ {4} *[\d.]+s {2}(.+)$/gm)].map((m) => m[1] ?? "");
    expect(shown.length).toBeGreaterThan(8);
    const templates = printedTemplates();
    for (const line of shown)
      expect(
        templates.some((t) => t.test(line)),
        line,
      ).toBe(true);
  });
});
