/**
 * Request and response schemas of the voting API: validated at runtime, documented in
 * `/openapi.json`, and imported as types by the web app's typed client (web/src/api.ts).
 */
import { z } from "@hono/zod-openapi";

export const ErrorSchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: "rate_limited" }),
      message: z.string().openapi({ example: "Too many requests; try again in 3 seconds." }),
    }),
  })
  .openapi("Error");

export const ImageSchema = z
  .object({
    url: z.string().openapi({ description: "Signed, expiring URL of the image" }),
    width: z.number().int(),
    height: z.number().int(),
    alt: z.string(),
  })
  .openapi("Image");

/**
 * A pair as a voter sees it. It says nothing of what kind of pair it is (data, experiment, gold)
 * or which models drew it: a voter who could tell could bias an experiment.
 */
export const PairSchema = z
  .object({
    pairId: z.string(),
    prompt: z.object({ id: z.string(), text: z.string(), category: z.string().nullable() }),
    left: ImageSchema,
    right: ImageSchema,
    voteToken: z.string().openapi({ description: "Send back with the vote; bound to this pair and voter" }),
    expiresAt: z.string().openapi({ description: "When the vote token expires (ISO 8601)" }),
  })
  .openapi("Pair");

export const PendingSchema = z
  .object({
    status: z.literal("pending"),
    retryAfterSeconds: z.number().int(),
    message: z.string(),
  })
  .openapi("Pending");

/** Other query parameters are ignored, as on every route (`experiment=` of old links among them). */
export const PairQuerySchema = z.object({
  promptSet: z.string().max(200).optional().openapi({ description: "Prompt set id or name" }),
});

export const VoteChoiceSchema = z.enum(["left", "right", "tie", "both_bad"]).openapi("VoteChoice");

export const VoteRequestSchema = z
  .object({
    token: z.string().min(1).max(1024),
    choice: VoteChoiceSchema,
    decisionMs: z
      .number()
      .int()
      .min(0)
      .max(3_600_000)
      .nullable()
      .optional()
      .openapi({ description: "Milliseconds from the pair appearing to the choice" }),
  })
  .openapi("VoteRequest");

export const VoteSchema = z
  .object({
    voteId: z.string(),
    pairId: z.string(),
    choice: VoteChoiceSchema,
    recordedAt: z.string(),
    duplicate: z.boolean().openapi({ description: "True when this vote had already been stored" }),
    voterVotes: z.number().int().openapi({ description: "Votes this voter has cast so far" }),
  })
  .openapi("Vote");

export const SessionSchema = z
  .object({
    csrfToken: z.string().openapi({ description: "Send as the x-csrf-token header on every POST" }),
    voterVotes: z.number().int(),
    promptMaxChars: z.number().int().openapi({ description: "Longest prompt POST /api/prompts accepts" }),
  })
  .openapi("Session");

export const PromptRequestSchema = z.object({ text: z.string().max(5000) }).openapi("PromptRequest");

export const PromptAcceptedSchema = z
  .object({
    pairId: z.string(),
    status: z.literal("generating"),
    retryAfterSeconds: z.number().int(),
    poll: z.string().openapi({ description: "GET this path until it answers 200 with the pair" }),
  })
  .openapi("PromptAccepted");

export const PoolStatusSchema = z
  .object({
    experimentId: z.string().nullable(),
    promptSetId: z.string().nullable(),
    depth: z.number().int(),
    ready: z.number().int(),
    generating: z.number().int(),
    failed: z.number().int(),
    queue: z.object({ ready: z.number().int(), inFlight: z.number().int(), dead: z.number().int() }),
  })
  .openapi("PoolStatus");

export const ImportRequestSchema = z
  .object({
    name: z.string().min(1).max(200),
    format: z
      .enum(["jsonl", "csv", "tsv"])
      .optional()
      .openapi({ description: "Guessed from filename if absent" }),
    filename: z.string().max(300).optional(),
    source: z.string().max(200).optional(),
    content: z.string().min(1),
  })
  .openapi("PromptSetImport");

export const ImportResultSchema = z
  .object({
    promptSetId: z.string(),
    name: z.string(),
    created: z.boolean(),
    parsed: z.number().int(),
    imported: z.number().int(),
    alreadyPresent: z.number().int(),
    problems: z.array(z.object({ line: z.number().int(), message: z.string() })),
  })
  .openapi("PromptSetImportResult");

export const PromptSetSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    source: z.string(),
    prompts: z.number().int(),
    createdAt: z.string(),
  })
  .openapi("PromptSet");

const GenerationRefSchema = z.object({ id: z.string(), adapterId: z.string().nullable(), seed: z.string() });

export const VoteRecordSchema = z
  .object({
    voteId: z.string(),
    pairId: z.string(),
    voterId: z.string(),
    choice: VoteChoiceSchema,
    decisionMs: z.number().int().nullable(),
    qcFlags: z.array(z.string()),
    createdAt: z.string(),
    leftIs: z.enum(["a", "b"]).nullable(),
    experimentId: z.string().nullable(),
    promptSetId: z.string().nullable(),
    prompt: z.string(),
    category: z.string().nullable(),
    generationA: GenerationRefSchema,
    generationB: GenerationRefSchema,
  })
  .openapi("VoteRecord");

export const VoteSearchQuerySchema = z.object({
  voterId: z.string().max(128).optional(),
  pairId: z.string().max(128).optional(),
  experimentId: z.string().max(128).optional(),
  promptSet: z.string().max(200).optional(),
  choice: VoteChoiceSchema.optional(),
  q: z.string().max(200).optional().openapi({ description: "Substring of the prompt (any case)" }),
  since: z.iso.datetime().optional(),
  before: z.string().max(128).optional().openapi({ description: "Cursor: nextBefore of the previous page" }),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export type Pair = z.infer<typeof PairSchema>;
export type Pending = z.infer<typeof PendingSchema>;
export type VoteChoice = z.infer<typeof VoteChoiceSchema>;
export type VoteRequest = z.infer<typeof VoteRequestSchema>;
export type Vote = z.infer<typeof VoteSchema>;
export type Session = z.infer<typeof SessionSchema>;
export type PromptRequest = z.infer<typeof PromptRequestSchema>;
export type PromptAccepted = z.infer<typeof PromptAcceptedSchema>;
export type ApiErrorBody = z.infer<typeof ErrorSchema>;
