CREATE TABLE "experiment_decisions" (
	"id" text PRIMARY KEY NOT NULL,
	"experiment_id" text NOT NULL,
	"action" text NOT NULL,
	"arm" text,
	"reason" text NOT NULL,
	"actor" text NOT NULL,
	"numbers" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "loop_rounds" (
	"id" text PRIMARY KEY NOT NULL,
	"base_model_id" text NOT NULL,
	"status" text DEFAULT 'training' NOT NULL,
	"snapshot_id" text,
	"parent_adapter_id" text,
	"experiment_id" text,
	"note" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone,
	CONSTRAINT "loop_rounds_status_ck" CHECK ("loop_rounds"."status" in ('training', 'experimenting', 'done', 'failed'))
);
--> statement-breakpoint
CREATE TABLE "training_runs" (
	"id" text PRIMARY KEY NOT NULL,
	"job_id" text NOT NULL,
	"round_id" text,
	"base_model_id" text NOT NULL,
	"adapter_id" text NOT NULL,
	"parent_adapter_id" text,
	"snapshot_id" text,
	"objective" text NOT NULL,
	"space" text NOT NULL,
	"hyper_parameters" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"status" text DEFAULT 'queued' NOT NULL,
	"progress" jsonb,
	"curve" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"metrics" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "training_runs_status_ck" CHECK ("training_runs"."status" in ('queued', 'running', 'succeeded', 'failed'))
);
--> statement-breakpoint
ALTER TABLE "adapters" ADD COLUMN "promoted_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "adapters" ADD COLUMN "retired_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "dataset_snapshots" ADD COLUMN "blob_prefix" text NOT NULL;--> statement-breakpoint
ALTER TABLE "dataset_snapshots" ADD COLUMN "cutoff" timestamp with time zone NOT NULL;--> statement-breakpoint
ALTER TABLE "dataset_snapshots" ADD COLUMN "since" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "dataset_snapshots" ADD COLUMN "dedupe_key" text NOT NULL;--> statement-breakpoint
ALTER TABLE "dataset_snapshots" ADD COLUMN "counts" jsonb DEFAULT '{}'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "dataset_snapshots" ADD COLUMN "files" jsonb DEFAULT '[]'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "experiments" ADD COLUMN "origin" text DEFAULT 'manual' NOT NULL;--> statement-breakpoint
ALTER TABLE "experiments" ADD COLUMN "round_id" text;--> statement-breakpoint
ALTER TABLE "experiments" ADD COLUMN "settings" jsonb DEFAULT '{}'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "generations" ADD COLUMN "degraded_from_id" text;--> statement-breakpoint
ALTER TABLE "generations" ADD COLUMN "degradation" text;--> statement-breakpoint
ALTER TABLE "pairs" ADD COLUMN "kind" text DEFAULT 'data' NOT NULL;--> statement-breakpoint
ALTER TABLE "pairs" ADD COLUMN "arm_a" text;--> statement-breakpoint
ALTER TABLE "pairs" ADD COLUMN "arm_b" text;--> statement-breakpoint
ALTER TABLE "voters" ADD COLUMN "quality_override" text;--> statement-breakpoint
ALTER TABLE "voters" ADD COLUMN "quality_checked_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "voters" ADD COLUMN "gold_votes" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "voters" ADD COLUMN "gold_correct" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "voters" ADD COLUMN "is_demo" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "experiment_decisions" ADD CONSTRAINT "experiment_decisions_experiment_id_experiments_id_fk" FOREIGN KEY ("experiment_id") REFERENCES "public"."experiments"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "loop_rounds" ADD CONSTRAINT "loop_rounds_base_model_id_base_models_id_fk" FOREIGN KEY ("base_model_id") REFERENCES "public"."base_models"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "loop_rounds" ADD CONSTRAINT "loop_rounds_snapshot_id_dataset_snapshots_id_fk" FOREIGN KEY ("snapshot_id") REFERENCES "public"."dataset_snapshots"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "training_runs" ADD CONSTRAINT "training_runs_round_id_loop_rounds_id_fk" FOREIGN KEY ("round_id") REFERENCES "public"."loop_rounds"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "training_runs" ADD CONSTRAINT "training_runs_base_model_id_base_models_id_fk" FOREIGN KEY ("base_model_id") REFERENCES "public"."base_models"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "training_runs" ADD CONSTRAINT "training_runs_snapshot_id_dataset_snapshots_id_fk" FOREIGN KEY ("snapshot_id") REFERENCES "public"."dataset_snapshots"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "experiment_decisions_experiment_idx" ON "experiment_decisions" USING btree ("experiment_id","created_at");--> statement-breakpoint
CREATE UNIQUE INDEX "loop_rounds_one_active_uq" ON "loop_rounds" USING btree ("base_model_id") WHERE "loop_rounds"."status" in ('training', 'experimenting');--> statement-breakpoint
CREATE UNIQUE INDEX "training_runs_job_uq" ON "training_runs" USING btree ("job_id");--> statement-breakpoint
CREATE UNIQUE INDEX "training_runs_adapter_uq" ON "training_runs" USING btree ("adapter_id");--> statement-breakpoint
CREATE INDEX "training_runs_status_idx" ON "training_runs" USING btree ("status");--> statement-breakpoint
CREATE INDEX "training_runs_round_idx" ON "training_runs" USING btree ("round_id");--> statement-breakpoint
CREATE UNIQUE INDEX "dataset_snapshots_dedupe_uq" ON "dataset_snapshots" USING btree ("dedupe_key");--> statement-breakpoint
CREATE INDEX "experiments_status_idx" ON "experiments" USING btree ("status");--> statement-breakpoint
ALTER TABLE "dataset_snapshots" DROP COLUMN "blob_key";--> statement-breakpoint
ALTER TABLE "dataset_snapshots" DROP COLUMN "sha256";