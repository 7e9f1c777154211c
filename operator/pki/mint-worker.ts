/** Worker-thread side of CertificateMinter: runs one minting job at a time off the main event loop. */
import { parentPort } from "node:worker_threads";
import { createCertificateAuthority, issueLeafCertificate } from "../../lib/pki/mint.ts";
import type { MintJob, MintReply } from "./minter.ts";
import { PkiError } from "../../lib/pki/errors.ts";

const port = parentPort;
if (!port) throw new Error("mint-worker.ts must run as a worker thread");

port.on("message", (job: MintJob) => {
  const work =
    job.kind === "ca"
      ? createCertificateAuthority(job.request, new Date(job.nowMs))
      : issueLeafCertificate(job.ca, job.request, new Date(job.nowMs));
  work.then(
    (issued) => {
      port.postMessage({ id: job.id, ok: true, issued } satisfies MintReply);
    },
    (error: unknown) => {
      const reply: MintReply =
        error instanceof PkiError
          ? { id: job.id, ok: false, code: error.code, message: error.message }
          : {
              id: job.id,
              ok: false,
              code: undefined,
              message: error instanceof Error ? error.message : String(error),
            };
      port.postMessage(reply);
    },
  );
});
