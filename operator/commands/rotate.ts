/**
 * `pingpong rotate PAIR [--ca]`: asks the operator for new leaf certificates (or a new CA) by setting
 * spec.tls.rotate (rotateCA) to the current time, then waits, saying what the operator reports,
 * until the operator has seen the change and CertificatesReady is Issued again: every running pod
 * has loaded the new certificates. `--no-wait` returns once the request is written.
 */
import type { PingPongPair } from "../api/types.ts";
import type { KubeClient } from "../runtime/kube-client.ts";
import { resources } from "../runtime/resources.ts";
import { PairNotFoundError } from "./status.ts";

export interface RotateOptions {
  readonly namespace: string;
  readonly name: string;
  readonly ca: boolean;
  readonly wait: boolean;
  readonly timeoutMs: number;
  /** Each new state of CertificatesReady while waiting. */
  readonly progress: (line: string) => void;
  readonly pollMs?: number;
  readonly now?: () => Date;
}

export class RotationTimeoutError extends Error {
  override readonly name = "RotationTimeoutError";
}

/** Requests the rotation; resolves with the token written and, when waiting, once it is done. */
export async function rotate(client: KubeClient, options: RotateOptions): Promise<{ token: string }> {
  const { namespace, name } = options;
  const token = (options.now?.() ?? new Date()).toISOString();
  const field = options.ca ? "rotateCA" : "rotate";
  let patched: PingPongPair;
  try {
    patched = await client.mergePatch<PingPongPair>(resources.pingPongPair, namespace, name, {
      spec: { tls: { [field]: token } },
    });
  } catch (error) {
    if ((error as { status?: number }).status === 404) {
      throw new PairNotFoundError(`no PingPongPair "${name}" in namespace "${namespace}"`, { cause: error });
    }
    throw error;
  }
  const generation = patched.metadata?.generation ?? 0;
  options.progress(`Set spec.tls.${field} to ${token} (generation ${generation})`);
  if (!options.wait) return { token };

  const deadline = Date.now() + options.timeoutMs;
  let last = "";
  for (;;) {
    const pair = await client.get<PingPongPair>(resources.pingPongPair, namespace, name);
    const seen = (pair?.status?.observedGeneration ?? 0) >= generation;
    const condition = pair?.status?.conditions?.find((c) => c.type === "CertificatesReady");
    const line = seen
      ? `CertificatesReady ${condition?.status ?? "Unknown"} ${condition?.reason ?? ""}: ${condition?.message ?? ""}`
      : `waiting for the operator to see generation ${generation}`;
    if (line !== last) {
      options.progress(line);
      last = line;
    }
    if (seen && condition?.status === "True" && condition.reason === "Issued") return { token };
    if (Date.now() > deadline) {
      throw new RotationTimeoutError(
        `the rotation did not finish within ${Math.round(options.timeoutMs / 1000)} s; last: ${line}`,
      );
    }
    await new Promise((r) => setTimeout(r, options.pollMs ?? 1_000));
  }
}
