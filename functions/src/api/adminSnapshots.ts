/**
 * Dataset snapshots for admins: freeze the usable votes up to a cut-off (Parquet in Pick-a-Pic
 * v2's columns, `functions/src/snapshots`), list them, show one, and a signed URL per file.
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Deps } from "../deps.js";
import { ApiError } from "../http/errors.js";
import { findSnapshot, listSnapshots, snapshotFileUrl } from "../snapshots/catalog.js";
import { createSnapshot, NoUsableVotesError, type Snapshot } from "../snapshots/export.js";
import { adminSecurity } from "./adminSession.js";
import { adminErrors, err, idParam, json } from "./routeDocs.js";
import type { VoterEnv } from "./voterSession.js";

export const SnapshotSchema = z
  .object({
    id: z.string(),
    format: z.string(),
    blobPrefix: z.string(),
    cutoff: z.string(),
    since: z.string().nullable(),
    rowCount: z.number().int(),
    counts: z.record(z.string(), z.unknown()).openapi({
      description:
        "rows, wins, ties, bothBad, voters, prompts, splits {train, validation, test}, excluded {reason: votes}",
    }),
    files: z.array(
      z.object({
        split: z.string(),
        key: z.string(),
        rows: z.number().int(),
        bytes: z.number().int(),
        sha256: z.string(),
      }),
    ),
    filters: z.record(z.string(), z.unknown()),
    createdAt: z.string(),
  })
  .openapi("DatasetSnapshot");

export const snapshotJson = (s: Snapshot) => ({
  id: s.id,
  format: s.format,
  blobPrefix: s.blobPrefix,
  cutoff: s.cutoff.toISOString(),
  since: s.since?.toISOString() ?? null,
  rowCount: s.rowCount,
  counts: s.counts,
  files: s.files,
  filters: s.filters,
  createdAt: s.createdAt.toISOString(),
});

const CreateSchema = z
  .object({
    cutoff: z.iso
      .datetime({ offset: true })
      .optional()
      .openapi({ description: "Votes created at or before this instant (default: now); not in the future" }),
    since: z.iso
      .datetime({ offset: true })
      .optional()
      .openapi({ description: "Only votes created after this instant" }),
    baseModelId: z
      .string()
      .max(128)
      .optional()
      .openapi({ description: "Only votes on this base model's pairs" }),
  })
  .strict();

const createRoute_ = createRoute({
  method: "post",
  path: "/api/admin/snapshots",
  tags: ["snapshots"],
  summary:
    "Freeze the usable votes up to a cut-off into train/validation/test Parquet files (the same cut-off gives the same snapshot)",
  security: adminSecurity,
  request: { body: { content: { "application/json": { schema: CreateSchema } }, required: false } },
  responses: {
    200: json(SnapshotSchema, "The snapshot of this cut-off already existed"),
    201: json(SnapshotSchema, "Exported"),
    400: err("A cut-off in the future, or `since` not before it"),
    409: err("No usable votes in the window: nothing written"),
    ...adminErrors,
  },
});

const listRoute = createRoute({
  method: "get",
  path: "/api/admin/snapshots",
  tags: ["snapshots"],
  summary: "Snapshots, newest first (page with `before` = the last one's createdAt)",
  security: adminSecurity,
  request: {
    query: z.object({
      limit: z.coerce.number().int().min(1).max(500).default(50),
      before: z.iso.datetime({ offset: true }).optional(),
    }),
  },
  responses: { 200: json(z.object({ snapshots: z.array(SnapshotSchema) }), "Snapshots"), ...adminErrors },
});

const getRoute = createRoute({
  method: "get",
  path: "/api/admin/snapshots/{id}",
  tags: ["snapshots"],
  summary: "One snapshot: cut-off, counts (exclusions by reason), files with sha256 and bytes",
  security: adminSecurity,
  request: { params: idParam },
  responses: { 200: json(SnapshotSchema, "The snapshot"), 404: err("No such snapshot"), ...adminErrors },
});

const fileRoute = createRoute({
  method: "get",
  path: "/api/admin/snapshots/{id}/files/{split}",
  tags: ["snapshots"],
  summary: "A signed, expiring URL of one split's Parquet file (train, validation or test)",
  security: adminSecurity,
  request: {
    params: idParam.extend({
      split: z.enum(["train", "validation", "test"]).openapi({ param: { name: "split", in: "path" } }),
    }),
  },
  responses: {
    200: json(
      z.object({ url: z.string(), expiresInSeconds: z.number().int(), key: z.string(), sha256: z.string() }),
      "Where to download it",
    ),
    404: err("No such snapshot"),
    ...adminErrors,
  },
});

export function registerAdminSnapshotRoutes(app: OpenAPIHono<VoterEnv>, deps: Deps): void {
  const found = async (id: string) => {
    const s = await findSnapshot(deps.db, id);
    if (!s) throw new ApiError(404, "snapshot_not_found", "There is no such snapshot.");
    return s;
  };

  app.openapi(createRoute_, async (c) => {
    const body = (c.req.valid("json") ?? {}) as z.infer<typeof CreateSchema>;
    const now = new Date();
    const cutoff = body.cutoff ? new Date(body.cutoff) : now;
    if (cutoff.getTime() > now.getTime())
      throw new ApiError(
        400,
        "cutoff_in_future",
        "The cut-off must not be in the future: later votes are not in yet.",
      );
    const since = body.since ? new Date(body.since) : null;
    if (since && since.getTime() >= cutoff.getTime())
      throw new ApiError(400, "empty_window", "`since` must be before the cut-off.");
    try {
      const { snapshot, created } = await createSnapshot(deps, {
        cutoff,
        since,
        baseModelId: body.baseModelId ?? null,
      });
      return c.json(snapshotJson(snapshot), created ? 201 : 200);
    } catch (e) {
      if (e instanceof NoUsableVotesError) throw new ApiError(409, "no_usable_votes", e.message);
      throw e;
    }
  });

  app.openapi(listRoute, async (c) => {
    const q = c.req.valid("query");
    const rows = await listSnapshots(deps.db, {
      limit: q.limit,
      before: q.before ? new Date(q.before) : undefined,
    });
    return c.json({ snapshots: rows.map(snapshotJson) }, 200);
  });

  app.openapi(getRoute, async (c) => c.json(snapshotJson(await found(c.req.valid("param").id)), 200));

  app.openapi(fileRoute, async (c) => {
    const { id, split } = c.req.valid("param");
    const s = await found(id);
    const file = await snapshotFileUrl(deps.blobs, s, split);
    if (!file) throw new ApiError(404, "file_not_found", `The snapshot has no ${split} file.`);
    const sha256 = s.files.find((f) => f.split === split)?.sha256 ?? "";
    return c.json({ ...file, sha256 }, 200);
  });
}
