import { execFile } from "node:child_process";
import { Writable } from "node:stream";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { createLogger } from "./logger.ts";

function logged(write: (logger: ReturnType<typeof createLogger>) => void): Record<string, unknown> {
  let line = "";
  const sink = new Writable({
    write: (chunk, _encoding, done) => {
      line += String(chunk);
      done();
    },
  });
  const logger = createLogger("test", sink);
  write(logger);
  return JSON.parse(line) as Record<string, unknown>;
}

describe("the logger", () => {
  it("shows the work-queue key: it names the pair, it is not key material", () => {
    expect(logged((l) => l.warn({ key: "default/demo" }, "Reconcile failed")).key).toBe("default/demo");
  });

  it("redacts private keys where they would appear: PEM fields and TLS options", () => {
    const line = logged((l) =>
      l.info(
        {
          privateKeyPem: "-----BEGIN PRIVATE KEY-----",
          material: { privateKeyPem: "-----BEGIN PRIVATE KEY-----", tlsKey: "k" },
          connect: { key: "-----BEGIN PRIVATE KEY-----", cert: "c" },
          tls: { key: "-----BEGIN PRIVATE KEY-----" },
        },
        "TLS",
      ),
    );
    expect(JSON.stringify(line)).not.toContain("BEGIN PRIVATE KEY");
    expect(line.connect).toEqual({ key: "[redacted]", cert: "c" });
  });
});

describe("the logger on standard output", () => {
  it("writes every line, the last ones too, when the process exits at once", async () => {
    const module = new URL("./logger.ts", import.meta.url).href;
    const { stdout } = await promisify(execFile)(process.execPath, [
      "--input-type=module",
      "-e",
      `const { createLogger } = await import(${JSON.stringify(module)});
       const logger = createLogger("exit-test");
       for (let i = 0; i < 1000; i++) logger.info({ i }, "line");
       process.exit(0);`,
    ]);
    const lines = stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { i: number; name: string });
    expect(lines).toHaveLength(1000);
    expect(lines.at(-1)).toMatchObject({ i: 999, name: "exit-test" });
  });
});
