import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { asyncStdout, createLogger, fixedInfoLine } from "./logger.ts";

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

  it("writes a fixed info line exactly as pino would, and follows the level", () => {
    const lines: string[] = [];
    const sink = new Writable({
      write: (chunk, _encoding, done) => {
        lines.push(...String(chunk).split("\n").filter(Boolean));
        done();
      },
    });
    const connection = createLogger("ponger", sink).child({ remote: "10.0.0.7" });
    const fast = fixedInfoLine(connection, "Received GET /ping");
    connection.info("Received GET /ping");
    fast();
    expect(lines).toHaveLength(2);
    const [viaPino, viaFast] = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(Object.keys(viaFast ?? {})).toEqual(Object.keys(viaPino ?? {}));
    expect({ ...viaFast, time: 0 }).toEqual({ ...viaPino, time: 0 });
    expect(Date.parse(String(viaFast?.time))).toBeGreaterThan(Date.now() - 5_000);
    expect(lines[1]).toMatch(/^\{"level":"info","time":"\d{4}-\d\d-\d\dT[\d:.]+Z",/);

    connection.level = "warn";
    fast();
    expect(lines).toHaveLength(2);
    connection.level = "debug";
    fast();
    expect(lines).toHaveLength(3);
  });

  it("gives the workloads an asynchronous standard output", () => {
    const stream = asyncStdout() as unknown as { sync: boolean; fd: number };
    expect(stream).toMatchObject({ sync: false, fd: 1 });
  });
});
