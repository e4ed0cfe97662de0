/** OpenAPI pieces the voter route files share: JSON responses, error responses, security names. */
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
