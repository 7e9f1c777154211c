/**
 * Reads a workload's config: defaults, then the YAML file, then environment variables, each field
 * checked as it is read. Every problem is collected and reported at once, naming where the bad value
 * came from (file field or variable) and what to write instead. Unknown file fields are errors too:
 * a misspelt `tlsCertifcate` must not silently fall back to a default.
 *
 * The operator writes the file as JSON, which is YAML too; the YAML parser is loaded only for a file
 * that is not JSON (one a person wrote). It is the biggest module a pod would otherwise load, for a
 * file read once.
 */
import { readFileSync } from "node:fs";
import { parseDuration } from "../lib/duration.ts";
import { errorMessage } from "../lib/logger.ts";

export class ConfigError extends Error {
  override readonly name = "ConfigError";
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.problems = problems;
  }
}

/** `service.tlsCertificate` -> `PINGPONG_SERVICE_TLS_CERTIFICATE`. */
export function environmentName(path: string): string {
  return `PINGPONG_${path
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .replace(/\./g, "_")
    .toUpperCase()}`;
}

type Env = Readonly<Record<string, string | undefined>>;

export class ConfigReader {
  private readonly problems: string[] = [];
  private readonly read = new Set<string>();
  private readonly document: Record<string, unknown>;
  private readonly env: Env;
  private readonly file: string;

  private constructor(document: Record<string, unknown>, env: Env, file: string) {
    this.document = document;
    this.env = env;
    this.file = file;
  }

  /** `file` may be undefined: then defaults and environment only. */
  static async load(file: string | undefined, env: Env = process.env): Promise<ConfigReader> {
    if (file === undefined) return new ConfigReader({}, env, "(no config file)");
    let text: string;
    try {
      // Synchronously, like the TLS files: a workload that never touches the libuv thread pool never
      // starts its threads (see tls-files.ts).
      text = readFileSync(file, "utf8");
    } catch (error) {
      throw new ConfigError([`cannot read config file ${file}: ${errorMessage(error)}`]);
    }
    return ConfigReader.parse(text, file, env);
  }

  static async parse(text: string, file: string, env: Env = process.env): Promise<ConfigReader> {
    let document: unknown;
    try {
      document = JSON.parse(text);
    } catch {
      try {
        const { parse: parseYaml } = await import("yaml");
        document = parseYaml(text);
      } catch (error) {
        throw new ConfigError([`${file} is not valid YAML: ${errorMessage(error)}`]);
      }
    }
    if (document === null || document === undefined) document = {};
    if (typeof document !== "object" || Array.isArray(document)) {
      throw new ConfigError([
        `${file} must be a YAML mapping (field: value), not ${Array.isArray(document) ? "a list" : typeof document}`,
      ]);
    }
    return new ConfigReader(document as Record<string, unknown>, env, file);
  }

  /** The raw value and a description of where it came from, or undefined when unset. */
  private lookup(path: string): { value: unknown; where: string } | undefined {
    this.read.add(path);
    const name = environmentName(path);
    const fromEnv = this.env[name];
    if (fromEnv !== undefined && fromEnv !== "")
      return { value: fromEnv, where: `environment variable ${name}` };
    let node: unknown = this.document;
    for (const key of path.split(".")) {
      if (typeof node !== "object" || node === null || Array.isArray(node)) return undefined;
      node = (node as Record<string, unknown>)[key];
    }
    return node === undefined || node === null
      ? undefined
      : { value: node, where: `${path} in ${this.file}` };
  }

  private problem(message: string): void {
    this.problems.push(message);
  }

  optionalString(path: string): string | undefined {
    const found = this.lookup(path);
    if (!found) return undefined;
    if (typeof found.value !== "string" || found.value === "") {
      this.problem(`${found.where} must be a non-empty string`);
      return undefined;
    }
    return found.value;
  }

  string(path: string, fallback: string): string {
    return this.optionalString(path) ?? fallback;
  }

  required(path: string, what: string): string {
    if (!this.lookup(path)) {
      this.problem(`${path} is required (${what}); set it in ${this.file} or as ${environmentName(path)}`);
      return "";
    }
    return this.optionalString(path) ?? "";
  }

  oneOf<T extends string>(path: string, allowed: readonly T[], fallback: T): T {
    const found = this.lookup(path);
    if (!found) return fallback;
    if (typeof found.value === "string" && (allowed as readonly string[]).includes(found.value))
      return found.value as T;
    this.problem(`${found.where} is ${JSON.stringify(found.value)}; use one of ${allowed.join(", ")}`);
    return fallback;
  }

  /** A TCP port; 0 lets the system pick one (the program logs the one it got). */
  port(path: string, fallback: number): number {
    const found = this.lookup(path);
    if (!found) return fallback;
    const value = typeof found.value === "string" ? Number(found.value) : found.value;
    if (typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= 65535) return value;
    this.problem(
      `${found.where} is ${JSON.stringify(found.value)}; a port is a whole number from 0 to 65535`,
    );
    return fallback;
  }

  /** A positive Go-style duration such as "500ms" or "2s" (or "0s" where `allowZero`), in milliseconds. */
  duration(path: string, fallback: string, allowZero = false): number {
    const found = this.lookup(path);
    const text = found ? found.value : fallback;
    if (typeof text !== "string") {
      this.problem(`${found?.where ?? path} must be a duration string such as "1s"`);
      return parseDuration(fallback);
    }
    try {
      const ms = parseDuration(text);
      if (ms > 0 || (allowZero && ms === 0)) return ms;
      this.problem(`${found?.where ?? path} must be ${allowZero ? "0s or longer" : "longer than 0s"}`);
    } catch (error) {
      this.problem(`${found?.where ?? path}: ${errorMessage(error)}`);
    }
    return parseDuration(fallback);
  }

  check(condition: boolean, message: string): void {
    if (!condition) this.problem(message);
  }

  /** Throws ConfigError listing every problem, including file fields nothing read. */
  finish(): void {
    const unknown: string[] = [];
    const visit = (node: unknown, prefix: string) => {
      if (typeof node !== "object" || node === null || Array.isArray(node)) {
        if (!this.read.has(prefix)) unknown.push(prefix);
        return;
      }
      for (const [key, child] of Object.entries(node)) visit(child, prefix ? `${prefix}.${key}` : key);
    };
    visit(this.document, "");
    for (const path of unknown) {
      this.problems.push(
        `${path} in ${this.file} is not a known field; known fields: ${[...this.read].join(", ")}`,
      );
    }
    if (this.problems.length > 0) throw new ConfigError(this.problems);
  }
}
