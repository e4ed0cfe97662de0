/**
 * The whole data model, one file. Migrations in `migrations/` are generated from it with
 * `npm run db:generate` and applied at start-up.
 */
import { sql } from "drizzle-orm";
import {
  boolean,
  check,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
} from "drizzle-orm/pg-core";

const createdAt = () => timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow();
const hyper = () => jsonb("hyper_parameters").$type<Record<string, unknown>>().notNull().default({});
const metrics = () => jsonb("metrics").$type<Record<string, number>>().notNull().default({});

export const promptSets = pgTable("prompt_sets", {
  id: text("id").primaryKey(),
  name: text("name").notNull().unique(),
  source: text("source").notNull(),
  createdAt: createdAt(),
});

export const prompts = pgTable(
  "prompts",
  {
    id: text("id").primaryKey(),
    promptSetId: text("prompt_set_id").references(() => promptSets.id),
    text: text("text").notNull(),
    category: text("category"),
    challenge: text("challenge"),
    source: text("source").notNull(),
    createdByVoterId: text("created_by_voter_id").references(() => voters.id),
    createdAt: createdAt(),
  },
  (t) => [
    index("prompts_set_idx").on(t.promptSetId),
    uniqueIndex("prompts_set_text_uq").on(t.promptSetId, t.text),
  ],
);

export const baseModels = pgTable("base_models", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  family: text("family").notNull(),
  sha256: text("sha256").notNull(),
  diffusersUri: text("diffusers_uri"),
  onnxUri: text("onnx_uri"),
  width: integer("width").notNull(),
  height: integer("height").notNull(),
  createdAt: createdAt(),
});

export const adapterStatus = ["candidate", "champion", "retired"] as const;

export const adapters = pgTable(
  "adapters",
  {
    id: text("id").primaryKey(),
    baseModelId: text("base_model_id")
      .notNull()
      .references(() => baseModels.id),
    parentAdapterId: text("parent_adapter_id"),
    blobPrefix: text("blob_prefix").notNull(),
    format: text("format").notNull().default("diffusers-lora-safetensors"),
    objective: text("objective"),
    space: text("space"),
    rank: integer("rank"),
    alpha: doublePrecision("alpha"),
    hyperParameters: hyper(),
    datasetSnapshotId: text("dataset_snapshot_id").references(() => datasetSnapshots.id),
    trainingJobId: text("training_job_id"),
    metrics: metrics(),
    status: text("status", { enum: adapterStatus }).notNull().default("candidate"),
    createdAt: createdAt(),
    /** When it last became champion / was retired (lineage of champions over time). */
    promotedAt: timestamp("promoted_at", { withTimezone: true, mode: "date" }),
    retiredAt: timestamp("retired_at", { withTimezone: true, mode: "date" }),
  },
  (t) => [
    index("adapters_base_status_idx").on(t.baseModelId, t.status),
    uniqueIndex("adapters_one_champion_uq").on(t.baseModelId).where(sql`${t.status} = 'champion'`),
    check("adapters_status_ck", sql`${t.status} in ('candidate', 'champion', 'retired')`),
  ],
);

export const generationStatus = ["queued", "running", "succeeded", "failed"] as const;

export const generations = pgTable(
  "generations",
  {
    id: text("id").primaryKey(),
    promptId: text("prompt_id")
      .notNull()
      .references(() => prompts.id),
    baseModelId: text("base_model_id")
      .notNull()
      .references(() => baseModels.id),
    adapterId: text("adapter_id").references(() => adapters.id),
    adapterStrength: doublePrecision("adapter_strength").notNull().default(1),
    seed: text("seed").notNull(),
    sampler: text("sampler").notNull(),
    steps: integer("steps").notNull(),
    guidance: doublePrecision("guidance").notNull(),
    width: integer("width").notNull(),
    height: integer("height").notNull(),
    blobKey: text("blob_key"),
    latencyMs: integer("latency_ms"),
    status: text("status", { enum: generationStatus }).notNull().default("queued"),
    error: text("error"),
    jobId: text("job_id"),
    /**
     * A gold pair's degraded side: the generation renders the same prompt and seed as
     * `degradedFromId` and then applies `degradation` (e.g. `blur`), so the better side is known.
     */
    degradedFromId: text("degraded_from_id"),
    degradation: text("degradation"),
    createdAt: createdAt(),
    /** When the status last changed or the job was last (re)sent: a generation stuck without progress is re-sent. */
    updatedAt: timestamp("updated_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
    finishedAt: timestamp("finished_at", { withTimezone: true, mode: "date" }),
  },
  (t) => [
    index("generations_prompt_idx").on(t.promptId),
    index("generations_adapter_idx").on(t.adapterId),
    check("generations_status_ck", sql`${t.status} in ('queued', 'running', 'succeeded', 'failed')`),
  ],
);

export const experimentStatus = ["draft", "running", "decided", "stopped"] as const;

export const experiments = pgTable(
  "experiments",
  {
    id: text("id").primaryKey(),
    name: text("name").notNull(),
    baseModelId: text("base_model_id")
      .notNull()
      .references(() => baseModels.id),
    /** Arms: `[{ name, adapterId | null }]`; the first arm is the control (champion). */
    arms: jsonb("arms").$type<{ name: string; adapterId: string | null }[]>().notNull(),
    allocation: jsonb("allocation").$type<number[]>().notNull(),
    promptSetId: text("prompt_set_id").references(() => promptSets.id),
    status: text("status", { enum: experimentStatus }).notNull().default("draft"),
    /** The latest decision (its history is in `experiment_decisions`). */
    decision: jsonb("decision").$type<Record<string, unknown>>(),
    /** `loop` (started by a training result) or `manual` (an admin). */
    origin: text("origin").notNull().default("manual"),
    /** The loop round whose challengers this experiment judges (null for manual experiments). */
    roundId: text("round_id"),
    /** Decision settings frozen at start: margin, minVotes, maxVotes, alpha, trafficShare. */
    settings: jsonb("settings").$type<Record<string, number>>().notNull().default({}),
    createdAt: createdAt(),
    startedAt: timestamp("started_at", { withTimezone: true, mode: "date" }),
    decidedAt: timestamp("decided_at", { withTimezone: true, mode: "date" }),
  },
  (t) => [
    index("experiments_status_idx").on(t.status),
    check("experiments_status_ck", sql`${t.status} in ('draft', 'running', 'decided', 'stopped')`),
  ],
);

/** Every decision an experiment's rule (or a person) took, with the numbers it used. */
export const experimentDecisions = pgTable(
  "experiment_decisions",
  {
    id: text("id").primaryKey(),
    experimentId: text("experiment_id")
      .notNull()
      .references(() => experiments.id),
    /** `continue`, `promote`, `retire`, `stop_untrustworthy`, `stop` (person), `promote` by a person. */
    action: text("action").notNull(),
    /** The arm the action is about (null for the whole experiment). */
    arm: text("arm"),
    reason: text("reason").notNull(),
    /** `loop` or `admin`. */
    actor: text("actor").notNull(),
    numbers: jsonb("numbers").$type<Record<string, unknown>>().notNull().default({}),
    createdAt: createdAt(),
  },
  (t) => [index("experiment_decisions_experiment_idx").on(t.experimentId, t.createdAt)],
);

/** A rater-quality flag on a voter: what fired, why, when, and the numbers behind it. */
export interface VoterFlag {
  code: string;
  reason: string;
  at: string;
  numbers?: Record<string, number>;
}

export const voters = pgTable("voters", {
  id: text("id").primaryKey(),
  createdAt: createdAt(),
  lastSeenAt: timestamp("last_seen_at", { withTimezone: true, mode: "date" }),
  qualityFlags: jsonb("quality_flags").$type<VoterFlag[]>().notNull().default([]),
  /** Whether this voter's votes are left out of snapshots, rankings and experiments. */
  excluded: boolean("excluded").notNull().default(false),
  /** A person's word over the flags: `include` (flags cleared) or `exclude`; null = the flags decide. */
  qualityOverride: text("quality_override"),
  qualityCheckedAt: timestamp("quality_checked_at", { withTimezone: true, mode: "date" }),
  goldVotes: integer("gold_votes").notNull().default(0),
  goldCorrect: integer("gold_correct").notNull().default(0),
  /** A simulated voter of the demo mode. */
  isDemo: boolean("is_demo").notNull().default(false),
  /** Votes this voter has cast: kept by a trigger on `votes` (counting them per vote grew with the voter's history). */
  votesCast: integer("votes_cast").notNull().default(0),
});

export const pairs = pgTable(
  "pairs",
  {
    id: text("id").primaryKey(),
    promptId: text("prompt_id")
      .notNull()
      .references(() => prompts.id),
    generationAId: text("generation_a_id")
      .notNull()
      .references(() => generations.id),
    generationBId: text("generation_b_id")
      .notNull()
      .references(() => generations.id),
    experimentId: text("experiment_id").references(() => experiments.id),
    /** The prompt set the pool drew this pair's prompt from (null for voter-written prompts). */
    promptSetId: text("prompt_set_id").references(() => promptSets.id),
    /** Which generation was shown on the left: 'a' or 'b'. Set when served. */
    leftIs: text("left_is"),
    /**
     * The one voter this pair is (or will be) shown to. Set with `servedAt` null = reserved for
     * that voter (a pair for the prompt they wrote, still generating); null and null = in the pool.
     */
    servedToVoterId: text("served_to_voter_id").references(() => voters.id),
    servedAt: timestamp("served_at", { withTimezone: true, mode: "date" }),
    isGold: boolean("is_gold").notNull().default(false),
    goldAnswer: text("gold_answer"),
    /** `data` (the champion, two seeds), `experiment` (two arms, one seed), `gold`, or `prompt` (voter-written). */
    kind: text("kind").notNull().default("data"),
    /** The experiment arm on side a / b (null outside experiments); each generation names its adapter. */
    armA: text("arm_a"),
    armB: text("arm_b"),
    createdAt: createdAt(),
  },
  (t) => [
    index("pairs_pool_idx").on(t.experimentId, t.servedAt),
    index("pairs_voter_idx").on(t.servedToVoterId),
    /*
     * The pool: pairs neither served nor reserved for a voter, oldest first. PostgreSQL orders an
     * index scan only after `=` conditions (not `is null`), hence one partial index per scope shape.
     */
    index("pairs_pool_set_idx")
      .on(t.promptSetId, t.createdAt)
      .where(sql`${t.servedAt} is null and ${t.servedToVoterId} is null and ${t.experimentId} is null`),
    index("pairs_pool_any_idx")
      .on(t.createdAt)
      .where(
        sql`${t.servedAt} is null and ${t.servedToVoterId} is null and ${t.experimentId} is null and ${t.promptSetId} is not null`,
      ),
    index("pairs_pool_experiment_idx")
      .on(t.experimentId, t.createdAt)
      .where(sql`${t.servedAt} is null and ${t.servedToVoterId} is null and ${t.experimentId} is not null`),
    check("pairs_left_is_ck", sql`${t.leftIs} is null or ${t.leftIs} in ('a', 'b')`),
  ],
);

export const voteChoices = ["left", "right", "tie", "both_bad"] as const;

export const votes = pgTable(
  "votes",
  {
    id: text("id").primaryKey(),
    pairId: text("pair_id")
      .notNull()
      .references(() => pairs.id),
    voterId: text("voter_id")
      .notNull()
      .references(() => voters.id),
    choice: text("choice", { enum: voteChoices }).notNull(),
    decisionMs: integer("decision_ms"),
    idempotencyKey: text("idempotency_key").notNull(),
    qcFlags: jsonb("qc_flags").$type<string[]>().notNull().default([]),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex("votes_pair_voter_uq").on(t.pairId, t.voterId),
    uniqueIndex("votes_idempotency_uq").on(t.idempotencyKey),
    index("votes_created_idx").on(t.createdAt),
    index("votes_voter_idx").on(t.voterId),
    check("votes_choice_ck", sql`${t.choice} in ('left', 'right', 'tie', 'both_bad')`),
  ],
);

export const jobStatus = ["queued", "leased", "done", "dead"] as const;

/** The Postgres-backed job queue (the local default for every queue). */
export const jobs = pgTable(
  "jobs",
  {
    id: text("id").notNull(),
    queue: text("queue").notNull(),
    body: jsonb("body").$type<unknown>().notNull(),
    status: text("status", { enum: jobStatus }).notNull().default("queued"),
    attempts: integer("attempts").notNull().default(0),
    maxAttempts: integer("max_attempts").notNull(),
    visibleAt: timestamp("visible_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
    leaseToken: text("lease_token"),
    lastError: text("last_error"),
    createdAt: createdAt(),
    updatedAt: timestamp("updated_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.queue, t.id] }),
    index("jobs_ready_idx").on(t.queue, t.status, t.visibleAt),
    check("jobs_status_ck", sql`${t.status} in ('queued', 'leased', 'done', 'dead')`),
  ],
);

/** One file of a snapshot (`train`, `validation`, `test`). */
export interface SnapshotFile {
  split: string;
  key: string;
  rows: number;
  bytes: number;
  sha256: string;
}

/**
 * A frozen training set: the usable votes up to `cutoff` as Parquet files in Pick-a-Pic v2's
 * schema under `blob_prefix`. The row is written after the files, so a row means complete files.
 */
export const datasetSnapshots = pgTable(
  "dataset_snapshots",
  {
    id: text("id").primaryKey(),
    blobPrefix: text("blob_prefix").notNull(),
    format: text("format").notNull().default("pickapic-v2-parquet"),
    /** Votes created at or before this instant (and after `since`, when set) are in the snapshot. */
    cutoff: timestamp("cutoff", { withTimezone: true, mode: "date" }).notNull(),
    since: timestamp("since", { withTimezone: true, mode: "date" }),
    /** Same cut-off + filters = same snapshot: the idempotency key. */
    dedupeKey: text("dedupe_key").notNull(),
    rowCount: integer("row_count").notNull(),
    /** rows, wins, ties, bothBad, voters, prompts, excluded: {reason: n}. */
    counts: jsonb("counts").$type<Record<string, unknown>>().notNull().default({}),
    files: jsonb("files").$type<SnapshotFile[]>().notNull().default([]),
    filters: jsonb("filters").$type<Record<string, unknown>>().notNull().default({}),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("dataset_snapshots_dedupe_uq").on(t.dedupeKey)],
);

export const roundStatus = ["training", "experimenting", "done", "failed"] as const;

/**
 * One turn of the loop for a base model: a snapshot, the training runs of its challengers, then
 * the experiment that judges them. At most one active round per base model (the unique index),
 * so two scheduler ticks at once start one round, never two.
 */
export const loopRounds = pgTable(
  "loop_rounds",
  {
    id: text("id").primaryKey(),
    baseModelId: text("base_model_id")
      .notNull()
      .references(() => baseModels.id),
    status: text("status", { enum: roundStatus }).notNull().default("training"),
    snapshotId: text("snapshot_id").references(() => datasetSnapshots.id),
    parentAdapterId: text("parent_adapter_id"),
    experimentId: text("experiment_id"),
    note: text("note"),
    createdAt: createdAt(),
    finishedAt: timestamp("finished_at", { withTimezone: true, mode: "date" }),
  },
  (t) => [
    uniqueIndex("loop_rounds_one_active_uq")
      .on(t.baseModelId)
      .where(sql`${t.status} in ('training', 'experimenting')`),
    check("loop_rounds_status_ck", sql`${t.status} in ('training', 'experimenting', 'done', 'failed')`),
  ],
);

export const trainingRunStatus = ["queued", "running", "succeeded", "failed"] as const;

/** Progress of a running training job, as its latest progress message reported it. */
export interface TrainingProgress {
  step: number;
  totalSteps: number;
  stepsPerSecond: number | null;
  etaSeconds: number | null;
  phase?: string;
}

/** A training job the platform queued, watched from queued to its result. */
export const trainingRuns = pgTable(
  "training_runs",
  {
    id: text("id").primaryKey(),
    /** The training job's id on the queue. */
    jobId: text("job_id").notNull(),
    roundId: text("round_id").references(() => loopRounds.id),
    baseModelId: text("base_model_id")
      .notNull()
      .references(() => baseModels.id),
    /** The id the published adapter will carry. */
    adapterId: text("adapter_id").notNull(),
    parentAdapterId: text("parent_adapter_id"),
    snapshotId: text("snapshot_id").references(() => datasetSnapshots.id),
    objective: text("objective").notNull(),
    space: text("space").notNull(),
    hyperParameters: hyper(),
    status: text("status", { enum: trainingRunStatus }).notNull().default("queued"),
    progress: jsonb("progress").$type<TrainingProgress>(),
    /** Metric rows as the worker logs them (`metrics.jsonl`): step, loss, implicit accuracy, held-out. */
    curve: jsonb("curve").$type<Record<string, number>[]>().notNull().default([]),
    metrics: metrics(),
    error: text("error"),
    createdAt: createdAt(),
    startedAt: timestamp("started_at", { withTimezone: true, mode: "date" }),
    finishedAt: timestamp("finished_at", { withTimezone: true, mode: "date" }),
    updatedAt: timestamp("updated_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex("training_runs_job_uq").on(t.jobId),
    uniqueIndex("training_runs_adapter_uq").on(t.adapterId),
    index("training_runs_status_idx").on(t.status),
    index("training_runs_round_idx").on(t.roundId),
    check("training_runs_status_ck", sql`${t.status} in ('queued', 'running', 'succeeded', 'failed')`),
  ],
);

export const schema = {
  promptSets,
  prompts,
  baseModels,
  adapters,
  generations,
  experiments,
  experimentDecisions,
  voters,
  pairs,
  votes,
  jobs,
  datasetSnapshots,
  loopRounds,
  trainingRuns,
};
