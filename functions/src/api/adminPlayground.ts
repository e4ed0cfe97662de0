/**
 * The playground's API: a prompt, two models (the base or an adapter each) and one seed, rendered
 * side by side through the generation queue; `POST` starts a run, `GET` polls it (202 while either
 * image is still being generated, then both signed image URLs).
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Deps } from "../deps.js";
import { checkPrompt } from "../domain/promptPolicy.js";
import { ApiError } from "../http/errors.js";
import { playgroundRun, startPlayground } from "../playground/playground.js";
import { adminSecurity } from "./adminSession.js";
import { err, json } from "./routeDocs.js";
import type { VoterEnv } from "./voterSession.js";

const model = z
  .string()
  .max(128)
  .nullable()
  .openapi({ description: "An adapter id, or null for the base model alone" });

const PlaygroundRequestSchema = z
  .object({
    prompt: z.string().trim().min(1).max(2000),
    left: model,
    right: model,
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 32 - 1)
      .optional()
      .openapi({ description: "The seed both sides share (random when left out)" }),
  })
  .openapi("PlaygroundRequest");

const ImageSchema = z.object({
  adapterId: z.string().nullable(),
  status: z.enum(["queued", "running", "succeeded", "failed"]),
  url: z.string().nullable().openapi({ description: "Signed, expiring image URL once it is generated" }),
  error: z.string().nullable(),
  latencyMs: z.number().int().nullable(),
});

const PlaygroundRunSchema = z
  .object({
    id: z.string(),
    prompt: z.string(),
    seed: z.number().int(),
    baseModelId: z.string(),
    done: z.boolean().openapi({ description: "Both sides have finished (succeeded or failed)" }),
    left: ImageSchema,
    right: ImageSchema,
  })
  .openapi("PlaygroundRun");

const startRoute = createRoute({
  method: "post",
  path: "/api/admin/playground",
  tags: ["admin"],
  summary: "Render one prompt with one seed on two models (base or adapters), side by side",
  security: adminSecurity,
  request: { body: { content: { "application/json": { schema: PlaygroundRequestSchema } }, required: true } },
  responses: {
    202: json(PlaygroundRunSchema, "Queued; poll GET /api/admin/playground/{id}"),
    400: err("Bad request"),
    401: err("Not signed in"),
    403: err("Admin API closed, or CSRF token missing"),
    404: err("Unknown adapter"),
    409: err("No base model registered"),
  },
});

const pollRoute = createRoute({
  method: "get",
  path: "/api/admin/playground/{id}",
  tags: ["admin"],
  summary: "A playground run: 202 while generating, 200 with both images when done",
  security: adminSecurity,
  request: {
    params: z.object({
      id: z
        .string()
        .max(64)
        .openapi({ param: { name: "id", in: "path" } }),
    }),
  },
  responses: {
    200: json(PlaygroundRunSchema, "Both sides finished"),
    202: json(PlaygroundRunSchema, "Still generating"),
    401: err("Not signed in"),
    404: err("No such run"),
  },
});

export function registerAdminPlaygroundRoutes(app: OpenAPIHono<VoterEnv>, deps: Deps): void {
  app.openapi(startRoute, async (c) => {
    const body = c.req.valid("json");
    const checked = checkPrompt(body.prompt, { maxChars: 2000, blocklist: [] });
    if (!checked.ok) throw new ApiError(400, checked.code, checked.message);
    const seed = body.seed ?? Math.floor(Math.random() * 2 ** 32);
    const id = await startPlayground(deps, {
      prompt: checked.text,
      left: body.left,
      right: body.right,
      seed,
    });
    const run = await playgroundRun(deps, id);
    if (!run) throw new ApiError(404, "playground_not_found", "The run vanished while it was being queued.");
    return c.json(run, 202);
  });

  app.openapi(pollRoute, async (c) => {
    const run = await playgroundRun(deps, c.req.valid("param").id);
    if (!run) throw new ApiError(404, "playground_not_found", "There is no such playground run.");
    if (run.done) return c.json(run, 200);
    c.header("retry-after", "1");
    return c.json(run, 202);
  });
}
