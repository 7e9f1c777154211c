import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, ConfigReader, environmentName } from "./config-reader.ts";
import { loadPingerConfig } from "./pinger/config.ts";
import { loadPongerConfig } from "./ponger/config.ts";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { promisify } from "node:util";
import { tmpdir } from "node:os";
import { join } from "node:path";

const execFileAsync = promisify(execFile);
const folders: string[] = [];

async function file(text: string): Promise<string> {
  const folder = await mkdtemp(join(tmpdir(), "config-"));
  folders.push(folder);
  const path = join(folder, "config.yaml");
  await writeFile(path, text);
  return path;
}

afterAll(async () => {
  await Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true })));
});

function problemsOf(error: unknown): readonly string[] {
  expect(error).toBeInstanceOf(ConfigError);
  return (error as ConfigError).problems;
}

describe("environmentName", () => {
  it.each([
    ["service.tlsCertificate", "PINGPONG_SERVICE_TLS_CERTIFICATE"],
    ["ponger.acceptCert", "PINGPONG_PONGER_ACCEPT_CERT"],
    ["service.clientCA", "PINGPONG_SERVICE_CLIENT_CA"],
    ["interval", "PINGPONG_INTERVAL"],
  ])("%s -> %s", (path, name) => {
    expect(environmentName(path)).toBe(name);
  });
});

describe("ponger config", () => {
  it("reads the original file format", async () => {
    const config = await loadPongerConfig(
      await file(`service:
  address: 127.0.0.1
  port: 8443
  protocol: https
  tlsCertificate: /tls/tls.crt
  tlsPrivateKey: /tls/tls.key
  clientCA: /tls/ca.crt
metrics:
  address: 127.0.0.1
  port: 9090
`),
      { POD_NAME: "demo-ponger-0" },
    );
    expect(config).toEqual({
      service: {
        address: "127.0.0.1",
        port: 8443,
        protocol: "https",
        tlsCertificate: "/tls/tls.crt",
        tlsPrivateKey: "/tls/tls.key",
        clientCA: "/tls/ca.crt",
      },
      metrics: { address: "127.0.0.1", port: 9090 },
      podName: "demo-ponger-0",
    });
  });

  it("lets the environment override the file and stand in for it", async () => {
    const config = await loadPongerConfig(await file("service:\n  port: 1\n  protocol: http\n"), {
      PINGPONG_SERVICE_PORT: "8080",
      PINGPONG_METRICS_PORT: "9100",
      HOSTNAME: "host-a",
    });
    expect(config.service).toMatchObject({ port: 8080, protocol: "http", address: "0.0.0.0" });
    expect(config.metrics.port).toBe(9100);
    expect(config.podName).toBe("host-a");
    const fromEnv = await loadPongerConfig(undefined, { PINGPONG_SERVICE_PROTOCOL: "http" });
    expect(fromEnv.service.port).toBe(8443);
  });

  it("lists every problem, with where it came from and what to write", async () => {
    const path = await file("service:\n  port: 70000\n  protocol: ftp\n  tlsCertficate: /x\n");
    const error = await loadPongerConfig(path, { PINGPONG_METRICS_PORT: "http" }).catch((e: unknown) => e);
    const problems = problemsOf(error);
    expect(problems).toContain(`service.port in ${path} is 70000; a port is a whole number from 0 to 65535`);
    expect(problems).toContain(`service.protocol in ${path} is "ftp"; use one of http, https`);
    expect(problems).toContain(
      'environment variable PINGPONG_METRICS_PORT is "http"; a port is a whole number from 0 to 65535',
    );
    expect(problems.some((p) => p.startsWith(`service.tlsCertficate in ${path} is not a known field`))).toBe(
      true,
    );
  });

  it("requires a certificate for https and refuses one for http", async () => {
    await expect(loadPongerConfig(undefined, {})).rejects.toThrow(
      /tlsCertificate and service.tlsPrivateKey are required/,
    );
    await expect(
      loadPongerConfig(undefined, {
        PINGPONG_SERVICE_PROTOCOL: "http",
        PINGPONG_SERVICE_CLIENT_CA: "/ca.crt",
      }),
    ).rejects.toThrow(/must not be set/);
  });

  it("explains files that are not a YAML mapping", async () => {
    await expect(loadPongerConfig(await file("- a\n- b\n"))).rejects.toThrow(
      /must be a YAML mapping .* not a list/,
    );
    await expect(loadPongerConfig(await file("service: [unclosed"))).rejects.toThrow(/is not valid YAML/);
    await expect(loadPongerConfig("/does/not/exist.yaml")).rejects.toThrow(
      /cannot read config file \/does\/not\/exist.yaml/,
    );
  });
});

describe("pinger config", () => {
  it("reads the original format with default interval and timeout", async () => {
    const config = await loadPingerConfig(
      await file(`ponger:
  url: https://demo-ponger.default.svc:8443/ping
  acceptCert: /tls/ca.crt
  clientCertificate: /tls/tls.crt
  clientPrivateKey: /tls/tls.key
`),
      { POD_NAME: "p" },
    );
    expect(config.ponger.url).toBe("https://demo-ponger.default.svc:8443/ping");
    expect(config.intervalMs).toBe(1_000);
    expect(config.timeoutMs).toBe(2_000);
    expect(config.startupGraceMs).toBe(30_000);
  });

  it("takes a start-up grace of 0s (no wait for the ponger), and refuses a negative one", async () => {
    const env = { PINGPONG_PONGER_URL: "http://127.0.0.1:1/ping" };
    const none = await loadPingerConfig(undefined, { ...env, PINGPONG_STARTUP_GRACE: "0s" });
    expect(none.startupGraceMs).toBe(0);
    await expect(loadPingerConfig(undefined, { ...env, PINGPONG_STARTUP_GRACE: "-1s" })).rejects.toThrow(
      /PINGPONG_STARTUP_GRACE/,
    );
  });

  it("takes durations from the environment", async () => {
    const config = await loadPingerConfig(undefined, {
      PINGPONG_PONGER_URL: "http://127.0.0.1:1/ping",
      PINGPONG_INTERVAL: "50ms",
      PINGPONG_TIMEOUT: "1.5s",
    });
    expect(config).toMatchObject({ intervalMs: 50, timeoutMs: 1_500 });
  });

  it("refuses a missing URL, a bad duration and half a client certificate", async () => {
    const error = await loadPingerConfig(
      await file("interval: soon\nponger:\n  clientCertificate: /c\n"),
      {},
    ).catch((e: unknown) => e);
    const problems = problemsOf(error);
    expect(problems.some((p) => /ponger.url is required .* PINGPONG_PONGER_URL/.test(p))).toBe(true);
    expect(problems.some((p) => /interval in .*: "soon" is not a duration/.test(p))).toBe(true);
    expect(problems.some((p) => /clientCertificate and ponger.clientPrivateKey go together/.test(p))).toBe(
      true,
    );
  });

  it("refuses a URL that is not http(s)", async () => {
    await expect(loadPingerConfig(undefined, { PINGPONG_PONGER_URL: "ftp://x/ping" })).rejects.toThrow(
      /must be an http:\/\/ or https:\/\/ URL/,
    );
    await expect(
      loadPingerConfig(undefined, { PINGPONG_PONGER_URL: "http://x/ping", PINGPONG_TIMEOUT: "0s" }),
    ).rejects.toThrow(/environment variable PINGPONG_TIMEOUT must be longer than 0s/);
  });
});

describe("ConfigReader", () => {
  it("treats an empty file as no settings", async () => {
    const reader = await ConfigReader.parse("", "empty.yaml", {});
    expect(reader.port("metrics.port", 9090)).toBe(9090);
    expect(() => reader.finish()).not.toThrow();
  });

  it("reads JSON and YAML the same, and loads the YAML parser only for a file that is not JSON", async () => {
    const json = await file('{"service": {"port": 9443}, "metrics": {"port": 9091}}');
    const yaml = await file("service: {port: 9443}\nmetrics:\n  port: 9091\n");
    // In a fresh process: what a pod given the operator's JSON file loads.
    const script = (path: string) => `
      import { createRequire } from "node:module";
      const { ConfigReader } = await import(${JSON.stringify(new URL("./config-reader.ts", import.meta.url).href)});
      const reader = await ConfigReader.load(${JSON.stringify(path)}, {});
      const ports = [reader.port("service.port", 0), reader.port("metrics.port", 0)];
      const yamlLoaded = Object.keys(createRequire(import.meta.url).cache).some((f) => f.includes("/node_modules/yaml/"));
      console.log(JSON.stringify({ ports, yamlLoaded }));`;
    const run = async (path: string) => {
      const { stdout } = await execFileAsync(process.execPath, ["--input-type=module", "-e", script(path)]);
      return JSON.parse(stdout) as { ports: number[]; yamlLoaded: boolean };
    };
    expect(await run(json)).toEqual({ ports: [9443, 9091], yamlLoaded: false });
    expect(await run(yaml)).toEqual({ ports: [9443, 9091], yamlLoaded: true });
  });
});
