/**
 * The adapter registry for admins: list with filters, show one (lineage to the base model,
 * snapshot, training run, objective, space, metrics, manifest), download its files, check it
 * against its base model again, promote it to champion (one per base model) or retire it
 * (`functions/src/adapters`).
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import {
  type Adapter,
  AdapterNotFound,
  findAdapter,
  lineage,
  listAdapters,
  promoteAdapter,
  retireAdapter,
} from "../adapters/registry.js";
import { type AdapterManifest, baseModelTargets, checkAdapter } from "../adapters/validate.js";
import { adapterStatus, baseModels, trainingRuns } from "../db/schema.js";
import type { Deps } from "../deps.js";
import { ApiError } from "../http/errors.js";
import { findSnapshot } from "../snapshots/catalog.js";
import { ADAPTER_MANIFEST_FILE, ADAPTER_WEIGHTS_FILE } from "../training/registerAdapter.js";
import { adminSecurity } from "./adminSession.js";
import { snapshotJson } from "./adminSnapshots.js";
import { runJson } from "./adminTrainingRuns.js";
import { adminErrors, err, idParam, json } from "./routeDocs.js";
import type { VoterEnv } from "./voterSession.js";

const AdapterSchema = z
  .object({
    id: z.string(),
    baseModelId: z.string(),
    parentAdapterId: z.string().nullable(),
    status: z.enum(adapterStatus),
    objective: z.string().nullable(),
    space: z.string().nullable(),
    rank: z.number().nullable(),
    alpha: z.number().nullable(),
    datasetSnapshotId: z.string().nullable(),
    trainingJobId: z.string().nullable(),
    metrics: z.record(z.string(), z.number()),
    hyperParameters: z.record(z.string(), z.unknown()),
    blobPrefix: z.string(),
    format: z.string(),
    createdAt: z.string(),
    promotedAt: z.string().nullable(),
    retiredAt: z.string().nullable(),
  })
  .openapi("Adapter");

const adapterJson = (a: Adapter) => ({
  id: a.id,
  baseModelId: a.baseModelId,
  parentAdapterId: a.parentAdapterId,
  status: a.status,
  objective: a.objective,
  space: a.space,
  rank: a.rank,
  alpha: a.alpha,
  datasetSnapshotId: a.datasetSnapshotId,
  trainingJobId: a.trainingJobId,
  metrics: a.metrics,
  hyperParameters: a.hyperParameters,
  blobPrefix: a.blobPrefix,
  format: a.format,
  createdAt: a.createdAt.toISOString(),
  promotedAt: a.promotedAt?.toISOString() ?? null,
  retiredAt: a.retiredAt?.toISOString() ?? null,
});

const LineageSchema = z.object({
  baseModelId: z.string(),
  complete: z.boolean().openapi({ description: "False when a parent is not registered here" }),
  missingParentId: z.string().nullable(),
  chain: z.array(
    z.object({
      adapterId: z.string(),
      status: z.string(),
      objective: z.string().nullable(),
      space: z.string().nullable(),
      datasetSnapshotId: z.string().nullable(),
      trainingRunId: z.string().nullable(),
      createdAt: z.string(),
    }),
  ),
});

const DetailSchema = AdapterSchema.extend({
  lineage: LineageSchema.openapi({
    description: "This adapter first, then its parent, … down to the base model",
  }),
  snapshot: z.record(z.string(), z.unknown()).nullable(),
  trainingRun: z.record(z.string(), z.unknown()).nullable(),
  manifest: z.record(z.string(), z.unknown()).nullable(),
}).openapi("AdapterDetail");

const listRoute = createRoute({
  method: "get",
  path: "/api/admin/adapters",
  tags: ["adapters"],
  summary: "Registered adapters, newest first, with filters (page with `before`)",
  security: adminSecurity,
  request: {
    query: z.object({
      baseModelId: z.string().max(128).optional(),
      status: z.enum(adapterStatus).optional(),
      objective: z.string().max(32).optional(),
      space: z.string().max(32).optional(),
      parentAdapterId: z.string().max(128).optional(),
      snapshotId: z.string().max(128).optional(),
      limit: z.coerce.number().int().min(1).max(500).default(100),
      before: z.iso.datetime({ offset: true }).optional(),
    }),
  },
  responses: { 200: json(z.object({ adapters: z.array(AdapterSchema) }), "Adapters"), ...adminErrors },
});

const getRoute = createRoute({
  method: "get",
  path: "/api/admin/adapters/{id}",
  tags: ["adapters"],
  summary:
    "One adapter: lineage to the base model, snapshot, training run, objective, space, metrics, manifest",
  security: adminSecurity,
  request: { params: idParam },
  responses: { 200: json(DetailSchema, "The adapter"), 404: err("No such adapter"), ...adminErrors },
});

const filesRoute = createRoute({
  method: "get",
  path: "/api/admin/adapters/{id}/files",
  tags: ["adapters"],
  summary:
    "Signed, expiring URLs of the adapter's files (weights loadable by diffusers `load_lora_weights`, manifest, metrics)",
  security: adminSecurity,
  request: { params: idParam },
  responses: {
    200: json(
      z.object({
        expiresInSeconds: z.number().int(),
        files: z.array(z.object({ name: z.string(), key: z.string(), url: z.string() })),
      }),
      "The files",
    ),
    404: err("No such adapter"),
    ...adminErrors,
  },
});

const validateRoute = createRoute({
  method: "post",
  path: "/api/admin/adapters/{id}/validate",
  tags: ["adapters"],
  summary:
    "Check the stored adapter against its base model again (manifest base hash, keys, shapes, dtypes, rank)",
  security: adminSecurity,
  request: { params: idParam },
  responses: {
    200: json(z.object({ ok: z.boolean(), reason: z.string().nullable() }), "The verdict"),
    404: err("No such adapter"),
    ...adminErrors,
  },
});

const ChangeSchema = z.object({ reason: z.string().trim().max(500).optional() });
const changeRoute = (action: "promote" | "retire", summary: string) =>
  createRoute({
    method: "post",
    path: `/api/admin/adapters/{id}/${action}`,
    tags: ["adapters"],
    summary,
    security: adminSecurity,
    request: {
      params: idParam,
      body: { content: { "application/json": { schema: ChangeSchema } }, required: false },
    },
    responses: {
      200: json(
        z.object({ adapter: AdapterSchema, changed: z.boolean(), previousChampionId: z.string().nullable() }),
        "Done (changed = false: it already was)",
      ),
      404: err("No such adapter"),
      409: err("The adapter does not pass its base model's checks"),
      ...adminErrors,
    },
  });

const promoteRoute = changeRoute(
  "promote",
  "Make the adapter the champion of its base model (one per base model; the previous champion is retired)",
);
const retireRoute = changeRoute(
  "retire",
  "Take the adapter out of service (retiring the champion leaves the base model)",
);

export function registerAdminAdapterRoutes(app: OpenAPIHono<VoterEnv>, deps: Deps): void {
  const found = async (id: string) => {
    const a = await findAdapter(deps.db, id);
    if (!a) throw new ApiError(404, "adapter_not_found", "There is no such adapter.");
    return a;
  };
  const manifestOf = async (a: Adapter): Promise<AdapterManifest | null> => {
    const bytes = await deps.blobs.get(`${a.blobPrefix}${ADAPTER_MANIFEST_FILE}`);
    if (!bytes) return null;
    try {
      return JSON.parse(new TextDecoder().decode(bytes)) as AdapterManifest;
    } catch {
      return null;
    }
  };
  const verdictOf = async (a: Adapter) => {
    const [base] = await deps.db.orm.select().from(baseModels).where(eq(baseModels.id, a.baseModelId));
    const manifest = await manifestOf(a);
    const weights = await deps.blobs.get(`${a.blobPrefix}${ADAPTER_WEIGHTS_FILE}`);
    if (!base) return { ok: false as const, reason: `base model ${a.baseModelId} is not registered` };
    if (!manifest || !weights)
      return { ok: false as const, reason: `adapter ${a.id}: its files are missing` };
    return checkAdapter(a.id, base, await baseModelTargets(deps, base), manifest, weights);
  };
  const reasonOf = async (c: { req: { valid(t: "json"): unknown } }, fallback: string) =>
    ((c.req.valid("json") ?? {}) as { reason?: string }).reason || fallback;

  app.openapi(listRoute, async (c) => {
    const q = c.req.valid("query");
    const rows = await listAdapters(deps.db, {
      baseModelId: q.baseModelId,
      status: q.status,
      objective: q.objective,
      space: q.space,
      parentAdapterId: q.parentAdapterId,
      datasetSnapshotId: q.snapshotId,
      limit: q.limit,
      before: q.before ? new Date(q.before) : undefined,
    });
    return c.json({ adapters: rows.map(adapterJson) }, 200);
  });

  app.openapi(getRoute, async (c) => {
    const a = await found(c.req.valid("param").id);
    const l = await lineage(deps.db, a);
    const snapshot = a.datasetSnapshotId ? await findSnapshot(deps.db, a.datasetSnapshotId) : null;
    const [run] = await deps.db.orm.select().from(trainingRuns).where(eq(trainingRuns.adapterId, a.id));
    return c.json(
      {
        ...adapterJson(a),
        lineage: {
          ...l,
          chain: l.chain.map((s) => ({ ...s, createdAt: s.createdAt.toISOString() })),
        },
        snapshot: snapshot ? snapshotJson(snapshot) : null,
        trainingRun: run ? runJson(run, true) : null,
        manifest: await manifestOf(a),
      },
      200,
    );
  });

  app.openapi(filesRoute, async (c) => {
    const a = await found(c.req.valid("param").id);
    const expiresInSeconds = deps.config.blob.signedUrlTtlSeconds;
    const keys = (await deps.blobs.list(a.blobPrefix)).filter(
      (k) => !k.slice(a.blobPrefix.length).startsWith("."),
    );
    const files = await Promise.all(
      keys.map(async (key) => ({
        name: key.slice(a.blobPrefix.length),
        key,
        url: await deps.blobs.signedUrl(key, { expiresInSeconds }),
      })),
    );
    return c.json({ expiresInSeconds, files }, 200);
  });

  app.openapi(validateRoute, async (c) => {
    const v = await verdictOf(await found(c.req.valid("param").id));
    return c.json({ ok: v.ok, reason: v.ok ? null : v.reason }, 200);
  });

  app.openapi(promoteRoute, async (c) => {
    const a = await found(c.req.valid("param").id);
    const v = await verdictOf(a);
    if (!v.ok) throw new ApiError(409, "adapter_invalid", v.reason);
    try {
      const out = await promoteAdapter(
        deps.db,
        a.id,
        { actor: "admin", reason: await reasonOf(c, "promoted by an admin") },
        deps.log,
      );
      return c.json(
        {
          adapter: adapterJson(out.adapter),
          changed: out.changed,
          previousChampionId: out.previousChampionId,
        },
        200,
      );
    } catch (e) {
      if (e instanceof AdapterNotFound) throw new ApiError(404, "adapter_not_found", e.message);
      throw e;
    }
  });

  app.openapi(retireRoute, async (c) => {
    const a = await found(c.req.valid("param").id);
    const out = await retireAdapter(
      deps.db,
      a.id,
      { actor: "admin", reason: await reasonOf(c, "retired by an admin") },
      deps.log,
    );
    return c.json({ adapter: adapterJson(out.adapter), changed: out.changed, previousChampionId: null }, 200);
  });
}
