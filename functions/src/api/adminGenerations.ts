/**
 * A generated image for admins by generation id: a redirect to its signed, expiring URL, so the
 * dashboard can show the images behind votes (an `<img>` on our origin carries the session cookie).
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import { generations } from "../db/schema.js";
import type { Deps } from "../deps.js";
import { ApiError } from "../http/errors.js";
import { adminSecurity } from "./adminSession.js";
import type { VoterEnv } from "./voterSession.js";
import { ErrorSchema } from "./votingSchemas.js";

const err = (description: string) => ({
  content: { "application/json": { schema: ErrorSchema } },
  description,
});

const imageRoute = createRoute({
  method: "get",
  path: "/api/admin/generations/{id}/image",
  tags: ["admin"],
  summary: "A generation's image: 302 to its signed, expiring URL",
  security: adminSecurity,
  request: {
    params: z.object({
      id: z
        .string()
        .max(128)
        .openapi({ param: { name: "id", in: "path" } }),
    }),
  },
  responses: {
    302: { description: "Redirect to the image's signed URL" },
    401: err("Not signed in"),
    404: err("No such generation, or it has no image (yet)"),
  },
});

export function registerAdminGenerationRoutes(app: OpenAPIHono<VoterEnv>, deps: Deps): void {
  app.openapi(imageRoute, async (c) => {
    const [g] = await deps.db.orm
      .select({ status: generations.status, blobKey: generations.blobKey })
      .from(generations)
      .where(eq(generations.id, c.req.valid("param").id));
    if (!g) throw new ApiError(404, "generation_not_found", "There is no such generation.");
    if (g.status !== "succeeded" || !g.blobKey) {
      throw new ApiError(404, "image_not_ready", `This generation has no image (status ${g.status}).`);
    }
    c.header("cache-control", "private, max-age=300");
    return c.redirect(await deps.blobs.signedUrl(g.blobKey), 302);
  });
}
