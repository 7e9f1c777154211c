import { execFile } from "node:child_process";
import { Writable } from "node:stream";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { createLineLogger, type Logger } from "./line-logger.ts";
import { createLogger } from "./logger.ts";

/** The same calls on a pino logger and on a line logger, each line parsed. */
function both(calls: (logger: Logger) => void): {
  pino: Record<string, unknown>[];
  ours: Record<string, unknown>[];
} {
  const pinoLines: string[] = [];
  const ourLines: string[] = [];
  calls(
    createLogger(
      "ponger",
      new Writable({
        write: (chunk, _encoding, done) => {
          pinoLines.push(String(chunk));
          done();
        },
      }),
    ),
  );
  calls(createLineLogger("ponger", { write: (line: string) => ourLines.push(line) }));
  const parse = (lines: string[]) =>
    lines
      .join("")
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { pino: parse(pinoLines), ours: parse(ourLines) };
}

/** Equal but for the time, with the keys in the same order. */
function expectSameLines(result: ReturnType<typeof both>): void {
  expect(result.ours).toHaveLength(result.pino.length);
  result.pino.forEach((expected, i) => {
    const actual = result.ours[i] ?? {};
    expect(Object.keys(actual)).toEqual(Object.keys(expected));
    expect({ ...actual, time: 0 }).toEqual({ ...expected, time: 0 });
    expect(String(actual.time)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });
}

describe("the line logger writes what pino writes", () => {
  it("messages, fields, child bindings and levels", () => {
    expectSameLines(
      both((logger) => {
        logger.info("Ponger listening");
        logger.warn({ url: "https://x/ping", port: 8443, mutual: true, nothing: null }, "Ping failed");
        const connection = logger.child({ remote: "10.0.0.7" });
        connection.info("Received GET /ping");
        connection.child({ request: 2 }).error({ reason: "bad" }, 'Refused "it"\n');
        logger.debug("not at info");
        logger.info({ skipped: undefined, kept: [1, "two"] }, "undefined fields are left out");
      }),
    );
  });

  it("errors, as pino's err serializer", () => {
    const error = Object.assign(new TypeError("file is gone"), { code: "ENOENT" });
    const result = both((logger) => {
      logger.error({ err: error }, "Reload failed");
    });
    expectSameLines(result);
    expect(result.ours[0]?.err).toMatchObject({ type: "TypeError", message: "file is gone", code: "ENOENT" });
  });

  it("key material redacted on the same paths", () => {
    const result = both((logger) => {
      logger.info(
        {
          privateKeyPem: "-----BEGIN PRIVATE KEY-----",
          material: { privateKeyPem: "-----BEGIN PRIVATE KEY-----", tlsKey: "k", other: 1 },
          connect: { key: "-----BEGIN PRIVATE KEY-----", cert: "c" },
          tls: { key: "-----BEGIN PRIVATE KEY-----" },
          key: "default/demo",
        },
        "TLS",
      );
    });
    expectSameLines(result);
    expect(JSON.stringify(result.ours)).not.toContain("BEGIN PRIVATE KEY");
    expect(result.ours[0]?.key).toBe("default/demo");
  });

  it("follows its level as it changes", () => {
    const lines: string[] = [];
    const logger = createLineLogger("ponger", { write: (line: string) => lines.push(line) });
    logger.level = "warn";
    logger.info("hidden");
    expect(logger.isLevelEnabled("info")).toBe(false);
    logger.level = "debug";
    logger.debug("shown");
    expect(lines).toHaveLength(1);
    expect(logger.level).toBe("debug");
    expect(() => (logger.level = "loud")).toThrow(/unknown log level "loud"/);
  });
});

describe("the line logger on standard output", () => {
  it("writes every line, the ones of the last turn too when the process exits at once", async () => {
    const module = new URL("./line-logger.ts", import.meta.url).href;
    const { stdout } = await promisify(execFile)(process.execPath, [
      "--input-type=module",
      "-e",
      `const { createLineLogger } = await import(${JSON.stringify(module)});
       const logger = createLineLogger("exit-test");
       for (let i = 0; i < 1000; i++) logger.info({ i }, "line");
       process.exit(0);`,
    ]);
    const lines = stdout.split("\n").filter(Boolean);
    expect(lines).toHaveLength(1000);
    expect(JSON.parse(lines.at(-1) ?? "{}")).toMatchObject({ i: 999, msg: "line", name: "exit-test" });
  });
});
