/**
 * A pair's certificates carried out: plan (certificate-plan.ts, pure), mint what the plan asks for,
 * plan again with it, until the plan publishes; then the pure builders turn the published plan into
 * the three Secrets and the status. A CA rotation keeps trust overlapping so no ping fails; its steps
 * (ca-rotation.ts) advance when the pods report the new material loaded.
 */
import type { V1Secret } from "@kubernetes/client-node";
import type { ResolvedSpec } from "../api/spec.ts";
import type { CertificateStatus, PingPongPair } from "../api/types.ts";
import type { IssuedCertificate } from "../../lib/pki/mint.ts";
import type { CertificateMinter } from "../pki/minter.ts";
import type { ReissueReason } from "../pki/policy.ts";
import type { CaRotationPhase } from "./ca-rotation.ts";
import {
  type CertificateRole,
  type Mint,
  type PlanInput,
  type PlannedCertificate,
  planCertificates,
  type PublishPlan,
} from "./certificate-plan.ts";
import { annotations, childNames, labels, ownerReference } from "./names.ts";

export { type CertificateRole, secretText, type StoredSecrets } from "./certificate-plan.ts";

export interface Issuance {
  readonly role: CertificateRole;
  readonly reason: ReissueReason;
  readonly message: string;
  readonly serial: string;
}

export interface CertificatesResult {
  /** The three Secrets as they should be; apply them all (unchanged ones are no-ops). */
  readonly secrets: V1Secret[];
  readonly issued: Issuance[];
  readonly status: {
    readonly ca: CertificateStatus;
    readonly certificates: { ponger: CertificateStatus; pinger: CertificateStatus; expires: string };
  };
  readonly caRotation:
    | {
        readonly phase: CaRotationPhase;
        readonly since: Date;
        readonly waitingFor: readonly string[];
        readonly overdue: boolean;
        readonly basis: "pods" | "time";
      }
    | undefined;
  /** The CA rotation started, advanced or finished in this reconcile. */
  readonly caRotationAdvanced: boolean;
  /** Running pods that have not loaded the leaf certificate their role has now. */
  readonly leavesLoading: readonly string[];
  /** When to look again: the earliest renewal or the end of the current rotation phase. */
  readonly nextCheck: Date;
}

/** A CA first, then the leaves under it: a plan publishes after at most this many rounds of minting. */
const maxMintRounds = 2;

/** Plans, mints what the plan asks for, and plans again until the plan publishes. */
export async function issueCertificates(
  input: Omit<PlanInput, "minted">,
  minter: CertificateMinter,
): Promise<PublishPlan> {
  const minted: Partial<Record<CertificateRole, IssuedCertificate>> = {};
  for (let round = 0; ; round++) {
    const plan = planCertificates({ ...input, minted });
    if (plan.action === "publish") return plan.publish;
    if (round === maxMintRounds) throw new Error(`certificates still to mint after ${maxMintRounds} rounds`);
    const issued = await Promise.all(plan.mint.map((mint) => carryOut(mint, minter, input.now)));
    plan.mint.forEach((mint, i) => (minted[mint.role] = issued[i]));
  }
}

function carryOut(mint: Mint, minter: CertificateMinter, now: Date): Promise<IssuedCertificate> {
  return mint.role === "ca"
    ? minter.createCertificateAuthority(mint.request, now)
    : minter.issueLeafCertificate(mint.issuer.material, mint.request, now);
}

/** What a published plan minted in this reconcile, for the log, the Events and the metric. */
export function issuances(plan: PublishPlan): Issuance[] {
  const certificate = (role: CertificateRole) => (role === "ca" ? plan.ca : plan.leaves[role]);
  return (["ca", "ponger", "pinger"] as const).flatMap((role) => {
    const why = plan.reasons[role];
    return why ? [{ role, ...why, serial: certificate(role).info.serial }] : [];
  });
}

const base64 = (text: string) => Buffer.from(text, "utf8").toString("base64");

/** The CA Secret and the two leaf Secrets a published plan holds. */
export function certificateSecrets(pair: PingPongPair, spec: ResolvedSpec, plan: PublishPlan): V1Secret[] {
  const name = pair.metadata?.name ?? "";
  const names = childNames(name);
  const { phase, since } = plan.rotation;
  const metadata = (secretName: string, component: CertificateRole, extra: Record<string, string>) => ({
    name: secretName,
    namespace: pair.metadata?.namespace ?? "",
    labels: labels(name, component),
    annotations: extra,
    ownerReferences: [ownerReference(pair)],
  });
  const caSecret: V1Secret = {
    apiVersion: "v1",
    kind: "Secret",
    type: "Opaque",
    metadata: metadata(names.caSecret, "ca", {
      [annotations.rotateCA]: spec.tls.rotateCA,
      ...(phase
        ? { [annotations.caRotationPhase]: phase, [annotations.caRotationSince]: since.toISOString() }
        : {}),
    }),
    data: {
      "tls.crt": base64(plan.ca.material.certificatePem),
      "tls.key": base64(plan.ca.material.privateKeyPem),
      ...(plan.previous.length > 0 ? { "previous.crt": base64(plan.previous.join("")) } : {}),
    },
  };
  const leafSecret = (role: "ponger" | "pinger", leaf: PlannedCertificate): V1Secret => ({
    apiVersion: "v1",
    kind: "Secret",
    type: "kubernetes.io/tls",
    metadata: metadata(role === "ponger" ? names.pongerSecret : names.pingerSecret, role, {
      [annotations.rotate]: spec.tls.rotate,
    }),
    data: {
      "tls.crt": base64(leaf.material.certificatePem),
      "tls.key": base64(leaf.material.privateKeyPem),
      "ca.crt": base64(plan.bundle),
    },
  });
  return [caSecret, leafSecret("ponger", plan.leaves.ponger), leafSecret("pinger", plan.leaves.pinger)];
}

function describe(certificate: PlannedCertificate): CertificateStatus {
  const { info } = certificate;
  return {
    serial: info.serial,
    notBefore: info.notBefore.toISOString(),
    notAfter: info.notAfter.toISOString(),
    renewalTime: certificate.renewal.toISOString(),
    sha256Fingerprint: info.sha256Fingerprint,
  };
}

/** Everything the reconcile needs of a published plan: Secrets, issuances, status, rotation. */
export function certificatesResult(
  pair: PingPongPair,
  spec: ResolvedSpec,
  plan: PublishPlan,
): CertificatesResult {
  const { ponger, pinger } = plan.leaves;
  const { rotation } = plan;
  const expires = Math.min(ponger.info.notAfter.getTime(), pinger.info.notAfter.getTime());
  return {
    secrets: certificateSecrets(pair, spec, plan),
    issued: issuances(plan),
    status: {
      ca: describe(plan.ca),
      certificates: {
        ponger: describe(ponger),
        pinger: describe(pinger),
        expires: new Date(expires).toISOString(),
      },
    },
    caRotation: rotation.phase
      ? {
          phase: rotation.phase,
          since: rotation.since,
          waitingFor: rotation.waitingFor,
          overdue: rotation.overdue,
          basis: rotation.basis,
        }
      : undefined,
    caRotationAdvanced: rotation.advanced,
    leavesLoading: plan.leavesLoading,
    nextCheck: plan.nextCheck,
  };
}
