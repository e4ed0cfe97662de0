/**
 * The one typed configuration, read from the environment. Every variable is documented in the
 * README's configuration table. A wrong or missing value throws a ConfigError whose message is
 * one line naming the variable and what is wrong.
 */
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { DEFAULT_GUARDRAILS, type GuardrailLimits } from "./domain/experimentDecision.js";

export const repoRoot = fileURLToPath(new URL("../../", import.meta.url));

const bool = z.enum(["true", "false", "1", "0"]).transform((v) => v === "true" || v === "1");
const port = z.coerce
  .number({ error: "must be a number" })
  .int("must be an integer")
  .min(1, "must be between 1 and 65535")
  .max(65535, "must be between 1 and 65535");
const positiveInt = z.coerce
  .number({ error: "must be a number" })
  .int("must be an integer")
  .positive("must be > 0");
const url = z.url({ error: "must be a URL" });
const secret = z.string().min(32, "must be at least 32 characters");
const nonNegativeInt = z.coerce
  .number({ error: "must be a number" })
  .int("must be an integer")
  .min(0, "must be ≥ 0");
const positiveNumber = z.coerce.number({ error: "must be a number" }).positive("must be > 0");
const fraction = z.coerce
  .number({ error: "must be a number" })
  .min(0, "must be between 0 and 1")
  .max(1, "must be between 0 and 1");
const objective = z.enum(["dpo", "cpo", "sft", "rpo", "kto"]);
const space = z.enum(["latent", "ncp"]);

/** onnxruntime execution providers the generator may ask for (inference/providers.ts). */
export const EXECUTION_PROVIDERS = ["cpu", "cuda"] as const;
export type ExecutionProvider = (typeof EXECUTION_PROVIDERS)[number];

export type LoopObjective = z.infer<typeof objective>;
export type LoopSpace = z.infer<typeof space>;

/**
 * β of the loop's training jobs, in the worker's convention (the official Diffusion-DPO β, used
 * with ½ inside the sigmoid). The most specific entry wins: `objective:space`, then `objective`,
 * then the default.
 */
export interface LoopBeta {
  default: number;
  objectives: Partial<Record<LoopObjective, number>>;
  pairs: Partial<Record<`${LoopObjective}:${LoopSpace}`, number>>;
}

/**
 * Diffusion-DPO's official β (5000 with the ½); the NCP code's `--beta_dpo` 2500 without the ½ is
 * the same temperature, and it uses that one value for DPO and CPO alike.
 */
export const DEFAULT_LOOP_BETA = 5000;

/** The β a challenger of this objective and space trains with. */
export function loopBeta(beta: LoopBeta, o: LoopObjective, s: LoopSpace): number {
  return beta.pairs[`${o}:${s}`] ?? beta.objectives[o] ?? beta.default;
}

/**
 * `LOOP_BETA`: one number (every objective), or comma-separated entries `β`, `objective:β` or
 * `objective:space:β`, e.g. `dpo:5000,cpo:2500,cpo:ncp:1000`. Returns the settings or what is wrong.
 */
export function parseLoopBeta(raw: string): LoopBeta | string {
  const beta: LoopBeta = { default: DEFAULT_LOOP_BETA, objectives: {}, pairs: {} };
  const seen = new Set<string>();
  for (const [i, item] of raw.split(",").entries()) {
    const entry = item.trim();
    if (!entry) return `has an empty entry (number ${i + 1})`;
    const parts = entry.split(":").map((p) => p.trim());
    if (parts.length > 3) return `entry "${entry}" must be β, objective:β or objective:space:β`;
    const [o, sp] = parts.slice(0, -1);
    const value = parts[parts.length - 1] as string;
    const n = Number(value);
    if (!/^[0-9.eE+-]+$/.test(value) || !Number.isFinite(n) || n <= 0)
      return `entry "${entry}" has β ${JSON.stringify(value)}: must be a number > 0`;
    if (o !== undefined && !objective.safeParse(o).success)
      return `entry "${entry}" names an unknown objective "${o}" (${objective.options.join(", ")})`;
    if (sp !== undefined && !space.safeParse(sp).success)
      return `entry "${entry}" names an unknown space "${sp}" (${space.options.join(", ")})`;
    const key = parts.slice(0, -1).join(":");
    if (seen.has(key)) return `entry "${entry}" repeats ${key ? `the β of ${key}` : "the default β"}`;
    seen.add(key);
    if (sp !== undefined) beta.pairs[key as keyof LoopBeta["pairs"]] = n;
    else if (o !== undefined) beta.objectives[o as LoopObjective] = n;
    else beta.default = n;
  }
  return beta;
}

const envSchema = z.object({
  PREFLOOP_ENV: z.enum(["dev", "test", "prod"]).default("dev"),
  HOST: z.string().min(1).default("127.0.0.1"),
  PORT: port.default(8787),
  PUBLIC_URL: url.optional(),
  STATE_DIR: z.string().min(1).optional(),
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, "must be a postgres:// or postgresql:// URL")
    .optional(),
  BLOB_BACKEND: z.enum(["fs", "s3"]).default("fs"),
  BLOB_DIR: z.string().min(1).optional(),
  S3_BUCKET: z.string().min(3).optional(),
  S3_ENDPOINT: url.optional(),
  S3_FORCE_PATH_STYLE: bool.default(false),
  AWS_REGION: z.string().min(1).default("us-east-1"),
  SIGNED_URL_TTL_SECONDS: positiveInt.max(7 * 24 * 3600, "must be at most 604800 (7 days)").default(900),
  QUEUE_BACKEND: z.enum(["pg", "sqs"]).default("pg"),
  QUEUE_MAX_ATTEMPTS: positiveInt.max(100).default(5),
  SQS_ENDPOINT: url.optional(),
  SQS_GENERATION_QUEUE_URL: url.optional(),
  SQS_TRAINING_QUEUE_URL: url.optional(),
  SQS_RESULTS_QUEUE_URL: url.optional(),
  SIGNING_SECRET: secret.optional(),
  ADMIN_API_KEY: secret.optional(),
  POOL_DEPTH: positiveInt.max(10_000).default(20),
  VOTE_TOKEN_TTL_SECONDS: positiveInt.max(7 * 24 * 3600, "must be at most 604800 (7 days)").default(3600),
  PROMPT_MAX_CHARS: positiveInt.max(2000, "must be at most 2000").default(300),
  PROMPT_BLOCKLIST: z.string().optional(),
  RATE_LIMIT_VOTER_PER_MINUTE: positiveInt.default(120),
  RATE_LIMIT_IP_PER_MINUTE: positiveInt.default(600),
  RATE_LIMIT_PROMPTS_PER_HOUR: positiveInt.default(30),
  CORS_ORIGINS: z
    .string()
    .regex(
      /^\s*(https?:\/\/[^,\s/]+\s*)(,\s*https?:\/\/[^,\s/]+\s*)*$/,
      "must be comma-separated origins like https://example.com",
    )
    .optional(),
  WEB_DIST_DIR: z.string().min(1).optional(),
  MODEL_DIR: z.string().min(1).optional(),
  INFERENCE_WORKERS: z.coerce
    .number({ error: "must be a number" })
    .int("must be an integer")
    .min(0, "must be 0 (in-process) or more")
    .max(64)
    .default(1),
  INFERENCE_THREADS: positiveInt.max(256).default(2),
  INFERENCE_EXECUTION_PROVIDER: z
    .enum(EXECUTION_PROVIDERS, { error: `must be ${EXECUTION_PROVIDERS.join(" or ")}` })
    .default("cpu"),
  ADAPTER_CACHE_MB: positiveInt.max(1_000_000).default(256),
  GOLD_PAIR_RATE: fraction.max(0.5, "must be at most 0.5").default(0.05),
  QUALITY_ALPHA: fraction.min(0.0001, "must be at least 0.0001").default(0.05),
  QUALITY_MIN_DECISION_MS: nonNegativeInt.max(60_000).default(400),
  LOOP_ENABLED: bool.default(true),
  LOOP_CHECK_SECONDS: positiveInt.max(86_400).default(30),
  LOOP_MIN_VOTES: positiveInt.default(200),
  LOOP_MAX_ROUNDS: positiveInt.optional(),
  LOOP_OBJECTIVE: objective.default("dpo"),
  LOOP_SPACE: space.default("latent"),
  LOOP_OBJECTIVES: z
    .string()
    .regex(
      /^\s*(dpo|cpo|sft|rpo|kto):(latent|ncp)\s*(,\s*(dpo|cpo|sft|rpo|kto):(latent|ncp)\s*)*$/,
      "must be comma-separated objective:space pairs like dpo:latent,cpo:ncp",
    )
    .optional(),
  LOOP_STEPS: positiveInt.max(1_000_000).default(200),
  LOOP_BETA: z
    .string()
    .transform((v, ctx) => {
      const beta = parseLoopBeta(v);
      if (typeof beta !== "string") return beta;
      ctx.addIssue({ code: "custom", message: beta });
      return z.NEVER;
    })
    .optional(),
  LOOP_LEARNING_RATE: positiveNumber.max(1, "must be at most 1").default(1e-4),
  LOOP_RANK: positiveInt.max(256).default(4),
  LOOP_BATCH_SIZE: positiveInt.max(1024).default(4),
  LOOP_DATA: z.enum(["all", "since-parent"]).default("all"),
  LOOP_TRAINING_OPTIONS: z
    .string()
    .refine((v) => {
      try {
        const o = JSON.parse(v);
        return typeof o === "object" && o !== null && !Array.isArray(o);
      } catch {
        return false;
      }
    }, 'must be a JSON object of worker training options, e.g. {"preset":"diffusion-dpo"}')
    .optional(),
  LOOP_AUTO_EXPERIMENT: bool.default(true),
  EXPERIMENT_TRAFFIC_SHARE: fraction.default(0.5),
  EXPERIMENT_MARGIN: fraction.max(0.49, "must be below 0.49").default(0),
  EXPERIMENT_MIN_VOTES: positiveInt.default(100),
  EXPERIMENT_MAX_VOTES: positiveInt.default(5000),
  EXPERIMENT_ALPHA: fraction
    .min(0.0001, "must be at least 0.0001")
    .max(0.5, "must be at most 0.5")
    .default(0.05),
  EXPERIMENT_GUARDRAIL_FAILURE_RATE: fraction.default(DEFAULT_GUARDRAILS.maxFailureRate),
  EXPERIMENT_GUARDRAIL_BOTH_BAD_RATE: fraction.default(DEFAULT_GUARDRAILS.maxBothBadRate),
  EXPERIMENT_GUARDRAIL_LATENCY_RATIO: z.coerce
    .number({ error: "must be a number" })
    .min(1, "must be at least 1 (the control's own latency)")
    .max(1000, "must be at most 1000")
    .default(DEFAULT_GUARDRAILS.maxLatencyRatio),
  EXPERIMENT_GUARDRAIL_MIN_GENERATIONS: positiveInt.default(DEFAULT_GUARDRAILS.minGenerations),
  EXPERIMENT_GUARDRAIL_MIN_VOTES: positiveInt.default(DEFAULT_GUARDRAILS.minVotesForBothBad),
  DEMO_VOTERS: nonNegativeInt.max(1000).default(0),
  DEMO_PREFERENCE: z.enum(["brighter", "darker", "saturated", "centered", "red"]).default("brighter"),
  DEMO_NOISE: fraction.default(0.1),
});

export type QueueName = "generation" | "training" | "results";

export interface Config {
  env: "dev" | "test" | "prod";
  host: string;
  port: number;
  publicUrl: string;
  stateDir: string;
  logLevel: "debug" | "info" | "warn" | "error";
  databaseUrl: string | undefined;
  blob:
    | { backend: "fs"; dir: string; signedUrlTtlSeconds: number }
    | {
        backend: "s3";
        bucket: string;
        endpoint: string | undefined;
        region: string;
        forcePathStyle: boolean;
        signedUrlTtlSeconds: number;
      };
  queue:
    | { backend: "pg"; maxAttempts: number }
    | { backend: "sqs"; endpoint: string | undefined; region: string; urls: Record<QueueName, string> };
  /** HMAC key for vote tokens, voter cookies and local signed URLs; undefined in dev = generated. */
  signingSecret: string | undefined;
  adminApiKey: string | undefined;
  voting: {
    /** Ready + generating pairs the pool keeps per experiment / prompt set. */
    poolDepth: number;
    voteTokenTtlSeconds: number;
    promptMaxChars: number;
    /** Raw PROMPT_BLOCKLIST: comma-separated words or phrases. */
    promptBlocklist: string | undefined;
    rateLimits: { voterPerMinute: number; ipPerMinute: number; promptsPerHour: number };
  };
  web: {
    /** Origins allowed to call the API from a browser; empty = CORS closed. */
    corsOrigins: string[];
    /** The built web app the Node server serves (when the folder exists). */
    distDir: string;
  };
  inference: {
    /** Exported model folder (`prefloop-onnx-sd/1`), or `blob:<prefix>` in the blob store. */
    modelDir: string;
    /** Where models copied from the blob store are kept. */
    modelCacheDir: string;
    /** Inference worker threads; 0 = on the consumer's own thread (Lambda). */
    workers: number;
    /** onnxruntime intra-op threads per worker. */
    intraOpThreads: number;
    /** onnxruntime execution provider: `cpu`, or `cuda` (falls back to `cpu` where CUDA cannot be used). */
    executionProvider: ExecutionProvider;
    /** Bound of the parsed-adapter LRU cache. */
    adapterCacheBytes: number;
  };
  quality: {
    /** Share of served pairs that are gold pairs (a generation vs a degraded copy of itself). */
    goldPairRate: number;
    /** Significance level of the rater-quality tests (outlier e-test, one-side streaks). */
    alpha: number;
    /** Votes decided faster than this are flagged as too fast to be a judgement. */
    minDecisionMs: number;
  };
  loop: {
    enabled: boolean;
    checkSeconds: number;
    /** Usable votes newer than the champion's snapshot that start a round. */
    minVotes: number;
    /** Rounds per base model after which no more start (LOOP_MAX_ROUNDS; null = no limit). */
    maxRounds: number | null;
    /** The challengers a round trains: one `{objective, space}` each (LOOP_OBJECTIVES, else LOOP_OBJECTIVE:LOOP_SPACE). */
    objectives: { objective: LoopObjective; space: LoopSpace }[];
    steps: number;
    /** LOOP_BETA; a run's β is `loopBeta(beta, objective, space)`. */
    beta: LoopBeta;
    learningRate: number;
    rank: number;
    batchSize: number;
    /** `all`: every usable vote up to the cut-off; `since-parent`: only votes after the parent's snapshot. */
    data: "all" | "since-parent";
    /** Worker training options sent as the jobs' `extra` (LOOP_TRAINING_OPTIONS, a JSON object). */
    trainingOptions: Record<string, unknown>;
    autoExperiment: boolean;
  };
  experiments: {
    /** Share of ordinary traffic a running experiment gets. */
    trafficShare: number;
    /** Promote when the lower bound of P(challenger ≻ champion) exceeds 0.5 + margin. */
    margin: number;
    minVotes: number;
    maxVotes: number;
    alpha: number;
    /** Guardrail limits (EXPERIMENT_GUARDRAIL_*), frozen into an experiment's settings at start. */
    guardrails: GuardrailLimits;
  };
  demo: {
    voters: number;
    preference: "brighter" | "darker" | "saturated" | "centered" | "red";
    /** Probability a simulated voter's choice is random instead of by the rule. */
    noise: number;
  };
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

function need<T>(value: T | undefined, variable: string, why: string): T {
  if (value === undefined) throw new ConfigError(`${variable} is required ${why}`);
  return value;
}

/** Reads and validates the configuration; throws ConfigError with a one-line message. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const variable = String(issue?.path[0] ?? "environment");
    const got = present[variable];
    const shown =
      variable.includes("SECRET") || variable.includes("KEY") ? "" : ` (got ${JSON.stringify(got)})`;
    throw new ConfigError(`${variable} ${issue?.message ?? "is invalid"}${got === undefined ? "" : shown}`);
  }
  const e = parsed.data;
  const stateDir = e.STATE_DIR ?? `${repoRoot}.state`;
  const blob: Config["blob"] =
    e.BLOB_BACKEND === "s3"
      ? {
          backend: "s3",
          bucket: need(e.S3_BUCKET, "S3_BUCKET", "when BLOB_BACKEND=s3"),
          endpoint: e.S3_ENDPOINT,
          region: e.AWS_REGION,
          forcePathStyle: e.S3_FORCE_PATH_STYLE,
          signedUrlTtlSeconds: e.SIGNED_URL_TTL_SECONDS,
        }
      : {
          backend: "fs",
          dir: e.BLOB_DIR ?? `${stateDir}/blobs`,
          signedUrlTtlSeconds: e.SIGNED_URL_TTL_SECONDS,
        };
  const queue: Config["queue"] =
    e.QUEUE_BACKEND === "sqs"
      ? {
          backend: "sqs",
          endpoint: e.SQS_ENDPOINT,
          region: e.AWS_REGION,
          urls: {
            generation: need(
              e.SQS_GENERATION_QUEUE_URL,
              "SQS_GENERATION_QUEUE_URL",
              "when QUEUE_BACKEND=sqs",
            ),
            training: need(e.SQS_TRAINING_QUEUE_URL, "SQS_TRAINING_QUEUE_URL", "when QUEUE_BACKEND=sqs"),
            results: need(e.SQS_RESULTS_QUEUE_URL, "SQS_RESULTS_QUEUE_URL", "when QUEUE_BACKEND=sqs"),
          },
        }
      : { backend: "pg", maxAttempts: e.QUEUE_MAX_ATTEMPTS };
  return {
    env: e.PREFLOOP_ENV,
    host: e.HOST,
    port: e.PORT,
    publicUrl: (e.PUBLIC_URL ?? `http://${e.HOST === "0.0.0.0" ? "localhost" : e.HOST}:${e.PORT}`).replace(
      /\/$/,
      "",
    ),
    stateDir,
    logLevel: e.LOG_LEVEL,
    databaseUrl: e.DATABASE_URL,
    blob,
    queue,
    signingSecret: e.SIGNING_SECRET,
    adminApiKey: e.ADMIN_API_KEY,
    voting: {
      poolDepth: e.POOL_DEPTH,
      voteTokenTtlSeconds: e.VOTE_TOKEN_TTL_SECONDS,
      promptMaxChars: e.PROMPT_MAX_CHARS,
      promptBlocklist: e.PROMPT_BLOCKLIST,
      rateLimits: {
        voterPerMinute: e.RATE_LIMIT_VOTER_PER_MINUTE,
        ipPerMinute: e.RATE_LIMIT_IP_PER_MINUTE,
        promptsPerHour: e.RATE_LIMIT_PROMPTS_PER_HOUR,
      },
    },
    web: {
      corsOrigins: (e.CORS_ORIGINS ?? "")
        .split(",")
        .map((o) => o.trim())
        .filter((o) => o.length > 0),
      distDir: e.WEB_DIST_DIR ?? `${repoRoot}web/dist`,
    },
    inference: {
      modelDir: e.MODEL_DIR ?? `${repoRoot}models/tiny-shapes-onnx`,
      modelCacheDir: `${stateDir}/models`,
      workers: e.INFERENCE_WORKERS,
      intraOpThreads: e.INFERENCE_THREADS,
      executionProvider: e.INFERENCE_EXECUTION_PROVIDER,
      adapterCacheBytes: e.ADAPTER_CACHE_MB * 1024 * 1024,
    },
    quality: {
      goldPairRate: e.GOLD_PAIR_RATE,
      alpha: e.QUALITY_ALPHA,
      minDecisionMs: e.QUALITY_MIN_DECISION_MS,
    },
    loop: {
      enabled: e.LOOP_ENABLED,
      checkSeconds: e.LOOP_CHECK_SECONDS,
      minVotes: e.LOOP_MIN_VOTES,
      maxRounds: e.LOOP_MAX_ROUNDS ?? null,
      objectives: parseObjectives(e.LOOP_OBJECTIVES) ?? [
        { objective: e.LOOP_OBJECTIVE, space: e.LOOP_SPACE },
      ],
      steps: e.LOOP_STEPS,
      beta: e.LOOP_BETA ?? { default: DEFAULT_LOOP_BETA, objectives: {}, pairs: {} },
      learningRate: e.LOOP_LEARNING_RATE,
      rank: e.LOOP_RANK,
      batchSize: e.LOOP_BATCH_SIZE,
      data: e.LOOP_DATA,
      trainingOptions: e.LOOP_TRAINING_OPTIONS
        ? (JSON.parse(e.LOOP_TRAINING_OPTIONS) as Record<string, unknown>)
        : {},
      autoExperiment: e.LOOP_AUTO_EXPERIMENT,
    },
    experiments: {
      trafficShare: e.EXPERIMENT_TRAFFIC_SHARE,
      margin: e.EXPERIMENT_MARGIN,
      minVotes: e.EXPERIMENT_MIN_VOTES,
      maxVotes: e.EXPERIMENT_MAX_VOTES,
      alpha: e.EXPERIMENT_ALPHA,
      guardrails: {
        maxFailureRate: e.EXPERIMENT_GUARDRAIL_FAILURE_RATE,
        maxBothBadRate: e.EXPERIMENT_GUARDRAIL_BOTH_BAD_RATE,
        maxLatencyRatio: e.EXPERIMENT_GUARDRAIL_LATENCY_RATIO,
        minGenerations: e.EXPERIMENT_GUARDRAIL_MIN_GENERATIONS,
        minVotesForBothBad: e.EXPERIMENT_GUARDRAIL_MIN_VOTES,
      },
    },
    demo: { voters: e.DEMO_VOTERS, preference: e.DEMO_PREFERENCE, noise: e.DEMO_NOISE },
  };
}

/** `dpo:latent, cpo:ncp` → one entry per challenger (validated by the schema's pattern). */
function parseObjectives(raw: string | undefined): Config["loop"]["objectives"] | undefined {
  if (!raw) return undefined;
  return raw.split(",").map((item) => {
    const [objective, space] = item.trim().split(":") as [LoopObjective, LoopSpace];
    return { objective, space };
  });
}

/**
 * The HTTP API signs vote tokens and voter cookies and guards the admin API, so in prod it
 * refuses to start without both secrets. Other processes (generator, results, scheduler,
 * migrations) never read them and do not need them.
 */
export function requireServingSecrets(config: Config): Config {
  if (config.env !== "prod") return config;
  need(config.signingSecret, "SIGNING_SECRET", "when PREFLOOP_ENV=prod");
  need(config.adminApiKey, "ADMIN_API_KEY", "when PREFLOOP_ENV=prod");
  return config;
}
