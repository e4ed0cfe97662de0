/**
 * Base models for admins: list, show one (its export at a glance, its champion adapter), and
 * register one from an ONNX export in the blob store (`functions/src/baseModels/register.ts`),
 * the way a deployment gets a model to serve and train.
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import {
  BASE_MODEL_ID,
  type BaseModel,
  baseModelSummary,
  findBaseModel,
  listBaseModels,
  registerBaseModel,
} from "../baseModels/register.js";
import type { Deps } from "../deps.js";
import { ApiError } from "../http/errors.js";
import { adminSecurity } from "./adminSession.js";
import { adminErrors, err, idParam, json } from "./routeDocs.js";
import type { VoterEnv } from "./voterSession.js";

const BaseModelSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    family: z.string().openapi({ example: "stable-diffusion-xl" }),
    sha256: z
      .string()
      .openapi({ description: "Content hash of the diffusers folder; adapters must carry the same" }),
    diffusersUri: z
      .string()
      .nullable()
      .openapi({ description: "Where the trainer reads the diffusers folder" }),
    onnxUri: z.string().nullable().openapi({ description: "Where the generator reads the ONNX export" }),
    width: z.number().int(),
    height: z.number().int(),
    createdAt: z.string(),
  })
  .openapi("BaseModel");

const baseModelJson = (b: BaseModel) => ({
  id: b.id,
  name: b.name,
  family: b.family,
  sha256: b.sha256,
  diffusersUri: b.diffusersUri,
  onnxUri: b.onnxUri,
  width: b.width,
  height: b.height,
  createdAt: b.createdAt.toISOString(),
});

const DetailSchema = BaseModelSchema.extend({
  manifest: z
    .object({
      format: z.string().openapi({ example: "prefloop-onnx-sdxl/1" }),
      family: z.string(),
      width: z.number().int(),
      height: z.number().int(),
      loraTargets: z.number().int().openapi({ description: "UNet modules an adapter may target" }),
    })
    .nullable()
    .openapi({ description: "The export's manifest at a glance; null when it cannot be read" }),
  manifestError: z.string().nullable(),
  championAdapterId: z
    .string()
    .nullable()
    .openapi({ description: "Null while the base model itself serves" }),
  adapterCount: z.number().int(),
}).openapi("BaseModelDetail");

/** No control characters (a NUL cannot be stored, and none belongs in a name or location). */
const PRINTABLE = /^\P{Cc}*$/u;
const printable = "no control characters";

const RegisterSchema = z
  .object({
    onnxPrefix: z.string().trim().min(1).max(900).openapi({
      description:
        "Blob prefix of the ONNX export (the folder the worker's export-onnx wrote, with manifest.json); `blob:<prefix>` and this bucket's `s3://` URI are taken too",
      example: "models/sdxl-onnx/",
    }),
    diffusersUri: z.string().trim().min(1).max(1000).optional().openapi({
      description:
        "Where the trainer reads the diffusers folder: `s3://bucket/prefix/`, `blob:<prefix>`, `file://...` or a path. In this blob store and with its checksums.sha256, the content hash is computed from it",
      example: "s3://prefloop-blobs/models/sdxl/",
    }),
    id: z
      .string()
      .regex(BASE_MODEL_ID, "letters, digits, '.', '_' and '-', at most 128")
      .optional()
      .openapi({ description: "Default: the prefix's last folder without `-onnx`" }),
    name: z.string().trim().min(1).max(200).regex(PRINTABLE, printable).optional(),
    sha256: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/, "64 hexadecimal digits")
      .optional()
      .openapi({
        description:
          "Content hash of the diffusers folder (the worker's model_sha256); needed unless diffusersUri is in this blob store with its checksums.sha256",
      }),
  })
  .openapi("BaseModelRegistration");

const listRoute = createRoute({
  method: "get",
  path: "/api/admin/base-models",
  tags: ["base models"],
  summary: "Registered base models, oldest first",
  security: adminSecurity,
  responses: { 200: json(z.object({ baseModels: z.array(BaseModelSchema) }), "Base models"), ...adminErrors },
});

const getRoute = createRoute({
  method: "get",
  path: "/api/admin/base-models/{id}",
  tags: ["base models"],
  summary: "One base model: its export's format, family, image size and LoRA targets, its champion adapter",
  security: adminSecurity,
  request: { params: idParam },
  responses: { 200: json(DetailSchema, "The base model"), 404: err("No such base model"), ...adminErrors },
});

const registerRoute = createRoute({
  method: "post",
  path: "/api/admin/base-models",
  tags: ["base models"],
  summary:
    "Register a base model (SD 1.x/2.x or SDXL) from its ONNX export in the blob store, or update it (same id)",
  security: adminSecurity,
  request: { body: { content: { "application/json": { schema: RegisterSchema } }, required: true } },
  responses: {
    201: json(BaseModelSchema, "Registered"),
    200: json(BaseModelSchema, "Updated (the id was registered)"),
    400: err("Malformed request"),
    409: err("Adapters of this id were trained on a model with another hash"),
    422: err("The export is missing or incomplete, or the content hash cannot be established"),
    ...adminErrors,
  },
});

export function registerAdminBaseModelRoutes(app: OpenAPIHono<VoterEnv>, deps: Deps): void {
  app.openapi(listRoute, async (c) =>
    c.json({ baseModels: (await listBaseModels(deps.db)).map(baseModelJson) }, 200),
  );

  app.openapi(getRoute, async (c) => {
    const base = await findBaseModel(deps.db, c.req.valid("param").id);
    if (!base) throw new ApiError(404, "base_model_not_found", "There is no such base model.");
    return c.json({ ...baseModelJson(base), ...(await baseModelSummary(deps, base)) }, 200);
  });

  app.openapi(registerRoute, async (c) => {
    const out = await registerBaseModel(deps, c.req.valid("json"));
    return c.json(baseModelJson(out.baseModel), out.created ? 201 : 200);
  });
}
