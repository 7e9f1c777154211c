/**
 * `pingpong ponger` and `pingpong pinger`: read the config, start, stop on SIGTERM. Shared by the
 * full CLI (cli.ts) and the image's entry point (entrypoint.ts), which runs them from one bundled file.
 */
import { parseArgs } from "node:util";
import { createLogger } from "../lib/logger.ts";
import { exitOnSignal } from "../lib/shutdown.ts";

export type WorkloadCommand = "ponger" | "pinger";

export function isWorkloadCommand(command: string | undefined): command is WorkloadCommand {
  return command === "ponger" || command === "pinger";
}

const fields: Readonly<Record<WorkloadCommand, string>> = {
  ponger: `  service.address (0.0.0.0)   service.port (8443)   service.protocol (https | http)
  service.tlsCertificate, service.tlsPrivateKey   PEM files, required for https
  service.clientCA            PEM bundle; when set, clients must present a certificate it signed
  metrics.address (0.0.0.0)   metrics.port (9090)   serves /metrics /healthz /readyz /status
`,
  pinger: `  ponger.url                  e.g. https://demo-ponger.default.svc:8443/ping (required)
  ponger.acceptCert           PEM bundle of CAs trusted for the ponger (system CAs when unset)
  ponger.clientCertificate, ponger.clientPrivateKey   PEM files for mutual TLS
  interval (1s)   timeout (2s)
  metrics.address (0.0.0.0)   metrics.port (9090)   serves /metrics /healthz /readyz /status
`,
};

export const workloadUsage = (command: WorkloadCommand) =>
  `Usage: pingpong ${command} [--config FILE]\n\nConfig fields (YAML), defaults in parentheses:\n${fields[command]}`;

function configFlag(args: string[], command: WorkloadCommand): string | undefined {
  const { values } = parseArgs({
    args,
    options: { config: { type: "string", short: "c" }, help: { type: "boolean", short: "h" } },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(workloadUsage(command));
    process.exit(0);
  }
  return values.config;
}

/** Runs the ponger or the pinger until SIGTERM or SIGINT. */
export async function runWorkload(command: WorkloadCommand, args: string[]): Promise<void> {
  const file = configFlag(args, command);
  const logger = createLogger(command);
  // Each program loads only its own libraries: a ponger has no HTTP client, a pinger no TLS server.
  const running =
    command === "ponger"
      ? await (
          await import("./ponger/ponger.ts")
        ).startPonger(await (await import("./ponger/config.ts")).loadPongerConfig(file), logger)
      : await (
          await import("./pinger/pinger.ts")
        ).startPinger(await (await import("./pinger/config.ts")).loadPingerConfig(file), logger);
  exitOnSignal(logger, () => running.close());
}
