/** OpenAPI pieces the route files share: JSON responses, error responses, security names, id paths. */
import { z } from "@hono/zod-openapi";
import { ErrorSchema } from "./votingSchemas.js";

export const json = <T>(schema: T, description: string) => ({
  content: { "application/json": { schema } },
  description,
});

/** The one error shape, documented for each status code. */
export const errors = (...codes: number[]) =>
  Object.fromEntries(codes.map((c) => [c, json(ErrorSchema, `Error (${c})`)])) as Record<
    number,
    ReturnType<typeof json<typeof ErrorSchema>>
  >;

export const voterSecurity = [{ voterCookie: [] }];
export const postSecurity = [{ voterCookie: [], csrfHeader: [] }];

/** One documented error response. */
export const err = (description: string) => json(ErrorSchema, description);

/** What every admin route may answer before it runs. */
export const adminErrors = {
  401: err("Not signed in"),
  403: err("Admin API closed, or CSRF token missing"),
};

/** A resource id in the path (`/{id}`). */
export const idParam = z.object({
  id: z
    .string()
    .max(128)
    .openapi({ param: { name: "id", in: "path" } }),
});
