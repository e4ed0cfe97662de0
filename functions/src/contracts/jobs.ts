/**
 * Job messages exchanged over the queues (generation, training, results).
 *
 * These zod schemas are the source of truth. `npm run contracts` writes the JSON Schema of
 * each message to `contracts/*.schema.json`, which the Python worker validates against; a test
 * keeps the committed files identical to what these schemas generate.
 */
import { z } from "zod";

export const CONTRACT_VERSION = 1 as const;

const id = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9._:-]+$/, "letters, digits and . _ : - only");
const blobUri = z
  .string()
  .regex(/^(file|s3):\/\/.+/, "a blob URI: file://… or s3://bucket/…")
  .describe("Location in a blob store: file:///abs/path or s3://bucket/key");

export const samplerName = z.enum(["ddim", "euler", "euler_ancestral", "lcm", "dpmpp_2m"]);
export const objectiveName = z.enum(["dpo", "cpo", "sft", "rpo", "kto"]);
export const spaceName = z.enum(["latent", "ncp"]);

const envelope = {
  version: z.literal(CONTRACT_VERSION),
  id: id.describe("Unique job id; consumers are idempotent on it"),
  createdAt: z.iso.datetime(),
};

export const generationJob = z
  .object({
    ...envelope,
    type: z.literal("generation"),
    payload: z.object({
      generationId: id,
      baseModelId: id,
      adapterId: id.nullable(),
      adapterStrength: z.number().min(0).max(4).default(1),
      prompt: z.string().max(2000),
      negativePrompt: z.string().max(2000).default(""),
      seed: z
        .number()
        .int()
        .min(0)
        .max(2 ** 53 - 1),
      sampler: samplerName,
      steps: z.number().int().min(1).max(200),
      guidance: z.number().min(0).max(30),
      width: z.number().int().min(8).max(2048),
      height: z.number().int().min(8).max(2048),
      pairId: id.nullable().default(null),
    }),
  })
  .strict();

export const trainingJob = z
  .object({
    ...envelope,
    type: z.literal("training"),
    payload: z.object({
      adapterId: id.describe("Id the published adapter will carry"),
      baseModelId: id,
      baseModelUri: blobUri,
      parentAdapterId: id.nullable().default(null),
      parentAdapterUri: blobUri
        .nullable()
        .default(null)
        .describe(
          "Prefix of the parent adapter's files: the policy LoRA starts from its weights and the frozen reference is base + parent",
        ),
      datasetSnapshotId: id,
      datasetUri: blobUri,
      outputUri: blobUri.describe("Prefix the adapter files and manifest are published under"),
      objective: objectiveName,
      space: spaceName,
      beta: z.number().positive(),
      rank: z.number().int().min(1).max(256),
      alpha: z.number().positive(),
      steps: z.number().int().min(1),
      learningRate: z.number().positive(),
      batchSize: z.number().int().min(1),
      gradientAccumulation: z.number().int().min(1).default(1),
      seed: z.number().int().min(0),
      extra: z.record(z.string(), z.unknown()).default({}),
    }),
  })
  .strict();

export const trainingResult = z
  .object({
    ...envelope,
    type: z.literal("training_result"),
    payload: z.object({
      trainingJobId: id,
      adapterId: id,
      status: z.enum(["succeeded", "failed"]),
      adapterUri: blobUri.nullable(),
      metrics: z.record(z.string(), z.number()).default({}),
      error: z.string().nullable().default(null),
    }),
  })
  .strict();

/**
 * Sent by the worker on the results queue while a job trains (every few steps and at each
 * evaluation), so a run's progress reaches the platform the same way locally and in AWS.
 */
export const trainingProgress = z
  .object({
    ...envelope,
    type: z.literal("training_progress"),
    payload: z.object({
      trainingJobId: id,
      adapterId: id,
      step: z.number().int().min(0),
      totalSteps: z.number().int().min(1),
      stepsPerSecond: z.number().min(0).nullable().default(null),
      etaSeconds: z.number().min(0).nullable().default(null),
      phase: z.string().max(64).default("training"),
      /** Metric rows logged since the last progress message (the lines of `metrics.jsonl`). */
      metrics: z.array(z.record(z.string(), z.number())).max(1000).default([]),
    }),
  })
  .strict();

export type GenerationJob = z.infer<typeof generationJob>;
export type TrainingProgress = z.infer<typeof trainingProgress>;
export type TrainingJob = z.infer<typeof trainingJob>;
export type TrainingResult = z.infer<typeof trainingResult>;

/** Every message kind, keyed by the file name of its JSON Schema in `contracts/`. */
export const jobContracts = {
  "generation-job": generationJob,
  "training-job": trainingJob,
  "training-result": trainingResult,
  "training-progress": trainingProgress,
} as const;
