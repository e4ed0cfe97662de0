/**
 * Training results → adapters. The worker publishes an adapter's files first and its
 * `manifest.json` last, then posts a `training_result`; this checks the adapter against its base
 * model (`adapters/validate.ts`) and registers it as a candidate with its true lineage (the
 * manifest's `parentAdapterId`). Idempotent on the adapter id: a redelivered result changes
 * nothing. A refused adapter is not registered and the refusal's reason is returned (it is final:
 * retrying would not change the files).
 */

import { eq } from "drizzle-orm";
import { type AdapterManifest, baseModelTargets, checkAdapter } from "../adapters/validate.js";
import { trainingResult } from "../contracts/jobs.js";
import { adapters, baseModels, datasetSnapshots } from "../db/schema.js";
import type { Deps } from "../deps.js";
import { blobKeyFromUri } from "../platform/blob/uri.js";

export const ADAPTER_WEIGHTS_FILE = "pytorch_lora_weights.safetensors";
export const ADAPTER_MANIFEST_FILE = "manifest.json";

export type RegisterOutcome =
  | { outcome: "registered" | "already-registered"; adapterId: string; parentAdapterId: string | null }
  | { outcome: "training-failed"; adapterId: string; error: string | null }
  | { outcome: "refused"; adapterId: string; reason: string };

export async function registerTrainingResult(
  deps: Pick<Deps, "db" | "blobs" | "config" | "log">,
  body: unknown,
): Promise<RegisterOutcome> {
  const msg = trainingResult.parse(body).payload;
  const adapterId = msg.adapterId;
  if (msg.status === "failed") {
    deps.log.warn("training failed", { trainingJobId: msg.trainingJobId, adapterId, error: msg.error });
    return { outcome: "training-failed", adapterId, error: msg.error };
  }
  const [known] = await deps.db.orm
    .select({ id: adapters.id, parent: adapters.parentAdapterId })
    .from(adapters)
    .where(eq(adapters.id, adapterId));
  if (known) return { outcome: "already-registered", adapterId, parentAdapterId: known.parent };

  if (!msg.adapterUri)
    return { outcome: "refused", adapterId, reason: `result for ${adapterId} has no adapterUri` };
  const prefix = blobKeyFromUri(
    deps.config.blob,
    msg.adapterUri.endsWith("/") ? msg.adapterUri : `${msg.adapterUri}/`,
  );
  if (!prefix)
    return {
      outcome: "refused",
      adapterId,
      reason: `adapter ${adapterId} is outside this platform's blob store: ${msg.adapterUri}`,
    };
  // Not there yet is not a refusal: the files may still be arriving, so the delivery is retried.
  const manifestBytes = await deps.blobs.get(`${prefix}${ADAPTER_MANIFEST_FILE}`);
  if (!manifestBytes) throw new Error(`adapter ${adapterId} has no ${ADAPTER_MANIFEST_FILE} yet`);
  const weights = await deps.blobs.get(`${prefix}${ADAPTER_WEIGHTS_FILE}`);
  if (!weights)
    return {
      outcome: "refused",
      adapterId,
      reason: `adapter ${adapterId} has a manifest but no ${ADAPTER_WEIGHTS_FILE}`,
    };
  let manifest: AdapterManifest;
  try {
    manifest = JSON.parse(new TextDecoder().decode(manifestBytes)) as AdapterManifest;
  } catch {
    return {
      outcome: "refused",
      adapterId,
      reason: `adapter ${adapterId}: ${ADAPTER_MANIFEST_FILE} is not JSON`,
    };
  }
  if (!manifest.baseModelId)
    return { outcome: "refused", adapterId, reason: `adapter ${adapterId}'s manifest names no baseModelId` };
  const [base] = await deps.db.orm.select().from(baseModels).where(eq(baseModels.id, manifest.baseModelId));
  if (!base)
    return {
      outcome: "refused",
      adapterId,
      reason: `adapter ${adapterId}: base model ${manifest.baseModelId} is not registered here`,
    };
  const verdict = checkAdapter(adapterId, base, await baseModelTargets(deps, base), manifest, weights);
  if (!verdict.ok) {
    deps.log.warn("adapter refused", { adapterId, reason: verdict.reason });
    return { outcome: "refused", adapterId, reason: verdict.reason };
  }

  const { baseModelId, objective, space, rank, alpha, datasetSnapshotId, metrics, parentAdapterId, ...rest } =
    manifest;
  // A dataset exported by this platform is linked; one brought from elsewhere (e.g. a Pick-a-Pic
  // file) has no snapshot row, so its id stays in the hyper-parameters only.
  const snapshot = datasetSnapshotId
    ? await deps.db.orm
        .select({ id: datasetSnapshots.id })
        .from(datasetSnapshots)
        .where(eq(datasetSnapshots.id, datasetSnapshotId))
    : [];
  const inserted = await deps.db.orm
    .insert(adapters)
    .values({
      id: adapterId,
      baseModelId,
      parentAdapterId: parentAdapterId ?? null,
      blobPrefix: prefix,
      objective: objective ?? null,
      space: space ?? null,
      rank: rank ?? verdict.rank,
      alpha: alpha ?? null,
      hyperParameters: { ...rest, datasetSnapshotId },
      datasetSnapshotId: snapshot[0]?.id ?? null,
      trainingJobId: msg.trainingJobId,
      metrics: { ...(metrics ?? {}), ...msg.metrics },
      status: "candidate",
    })
    .onConflictDoNothing({ target: adapters.id })
    .returning({ id: adapters.id });
  const outcome = inserted.length > 0 ? "registered" : "already-registered";
  deps.log.info("adapter result", { adapterId, outcome, parentAdapterId: parentAdapterId ?? null });
  return { outcome, adapterId, parentAdapterId: parentAdapterId ?? null };
}
