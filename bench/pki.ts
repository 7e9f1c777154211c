/**
 * PKI benchmark: time to mint one pair's material per key size, leaf throughput through the worker
 * pool, and event-loop lag while 100 leaves are minted at once (target p99 < 50 ms).
 */
import { availableParallelism } from "node:os";
import {
  createCertificateAuthority,
  issueLeafCertificate,
  type KeySize,
  type LeafRequest,
} from "../lib/pki/mint.ts";
import { type CertificateMinter, inProcessMinter, WorkerPoolMinter } from "../operator/pki/minter.ts";
import { report, summarize, withEventLoopLag } from "./report.ts";

const day = 86_400_000;

function leaf(i: number, keySize: KeySize = 2048): LeafRequest {
  return {
    usage: i % 2 === 0 ? "server" : "client",
    commonName: `bench-${i}`,
    dnsNames: i % 2 === 0 ? [`bench-${i}`, `bench-${i}.default.svc`] : [],
    keySize,
    durationMs: day,
  };
}

async function mintPairMaterial(keySize: KeySize): Promise<number> {
  const started = performance.now();
  const ca = await createCertificateAuthority({ commonName: "bench-ca", keySize, durationMs: 365 * day });
  await Promise.all([issueLeafCertificate(ca, leaf(0, keySize)), issueLeafCertificate(ca, leaf(1, keySize))]);
  return performance.now() - started;
}

/** Issues `count` RSA-2048 leaves under one CA through `minter`, all at once. */
export async function mintLeaves(
  minter: CertificateMinter,
  count: number,
): Promise<{ seconds: number; p99Ms: number; maxMs: number }> {
  const ca = await createCertificateAuthority({
    commonName: "bench-ca",
    keySize: 2048,
    durationMs: 365 * day,
  });
  const started = performance.now();
  const { p99Ms, maxMs } = await withEventLoopLag(() =>
    Promise.all(Array.from({ length: count }, (_, i) => minter.issueLeafCertificate(ca, leaf(i)))),
  );
  return { seconds: (performance.now() - started) / 1000, p99Ms, maxMs };
}

export async function benchPki(): Promise<void> {
  console.log("\n# PKI (node-forge; RSA keys from Node's native generator)");
  for (const [keySize, runs] of [
    [2048, 7],
    [3072, 5],
    [4096, 3],
  ] as const) {
    const samples: number[] = [];
    for (let i = 0; i < runs; i++) samples.push(await mintPairMaterial(keySize));
    const { p50, max } = summarize(samples);
    report(
      `mint one pair (CA + server + client), RSA ${keySize}`,
      p50,
      "ms p50",
      `max ${max.toFixed(0)} ms over ${runs} runs`,
    );
  }

  const workers = availableParallelism();
  const pool = new WorkerPoolMinter(workers);
  try {
    await mintLeaves(pool, workers * 2); // warm the workers up
    const pooled = await mintLeaves(pool, 100);
    report(`leaves per second, worker pool of ${workers}, RSA 2048`, 100 / pooled.seconds, "certs/s");
    report(
      "event-loop lag p99, 100 leaves at once, worker pool",
      pooled.p99Ms,
      "ms",
      `max ${pooled.maxMs.toFixed(1)} ms (target p99 < 50 ms)`,
    );
  } finally {
    await pool.close();
  }
  const inline = await mintLeaves(inProcessMinter, 100);
  report("leaves per second, main thread (for comparison)", 100 / inline.seconds, "certs/s");
  report(
    "event-loop lag p99, 100 leaves at once, main thread",
    inline.p99Ms,
    "ms",
    `max ${inline.maxMs.toFixed(1)} ms`,
  );
}
