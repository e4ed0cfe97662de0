/**
 * A platform with a history, for the dashboard's browser tests: a base model and a lineage of
 * adapters (two champions in turn, two challengers), snapshots and training runs with their
 * metric curves, loop rounds, an experiment started by the experiments service, and votes cast by
 * simulated voters through the public HTTP API (one of them fast and one-sided).
 */
import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import type { Hono } from "hono";
import { adapters, datasetSnapshots, loopRounds, trainingRuns } from "../../functions/src/db/schema.js";
import type { Deps } from "../../functions/src/deps.js";
import { startExperiment } from "../../functions/src/experiments/start.js";
import { rows } from "../../functions/src/platform/db/rows.js";
import { refreshVoterQuality } from "../../functions/src/quality/refresh.js";
import { Browser, seedBaseModel, seedReadyPairs } from "../api/votingHarness.js";

export interface SeededPlatform {
  experimentId: string;
  runningRunId: string;
  champion: string;
  votes: number;
}

/** A deterministic stream in [0, 1). */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Metric rows as the trainer logs them: the loss falls and the implicit accuracy rises. */
function curve(steps: number, rise: number): Record<string, number>[] {
  const out: Record<string, number>[] = [];
  for (let step = 0; step <= steps; step += Math.max(1, Math.floor(steps / 20))) {
    const t = step / steps;
    out.push({
      step,
      loss: Math.LN2 - 0.25 * rise * t + 0.01 * Math.sin(step),
      implicit_acc: 0.5 + 0.35 * rise * t,
      heldout_loss: Math.LN2 - 0.15 * rise * t,
      heldout_implicit_acc: 0.5 + 0.22 * rise * t,
    });
  }
  return out;
}

async function snapshot(deps: Deps, id: string, rowsIn: number, minutesAgo: number): Promise<void> {
  const train = Math.round(rowsIn * 0.8);
  const validation = Math.round(rowsIn * 0.1);
  await deps.db.orm.insert(datasetSnapshots).values({
    id,
    blobPrefix: `snapshots/${id}/`,
    cutoff: new Date(Date.now() - minutesAgo * 60_000),
    dedupeKey: id,
    rowCount: rowsIn,
    counts: { rows: rowsIn, voters: 7, excluded: { too_fast: 12, excluded_voter: 31, gold: 9 } },
    files: [
      { split: "train", key: `snapshots/${id}/train.parquet`, rows: train, bytes: 1, sha256: "0" },
      {
        split: "validation",
        key: `snapshots/${id}/validation.parquet`,
        rows: validation,
        bytes: 1,
        sha256: "0",
      },
      {
        split: "test",
        key: `snapshots/${id}/test.parquet`,
        rows: rowsIn - train - validation,
        bytes: 1,
        sha256: "0",
      },
    ],
  });
}

/** Votes through the HTTP API: each voter takes pairs of an experiment and picks by a hidden rule. */
async function castVotes(
  deps: Deps,
  app: Hono,
  experimentId: string,
  voters: { n: number; prefersChallenger: number; decisionMs: number; alwaysLeft?: boolean }[],
): Promise<number> {
  let cast = 0;
  const rnd = random(7);
  for (const v of voters) {
    const b = new Browser(app);
    await b.session();
    for (let i = 0; i < v.n; i++) {
      const res = await b.request(`/api/pairs/next?experiment=${experimentId}`);
      if (res.status !== 200) break;
      const pair = (await res.json()) as { pairId: string; voteToken: string };
      const [side] = await rows<{ left_is: string; arm_a: string }>(
        deps.db.orm,
        sql`select left_is, arm_a from pairs where id = ${pair.pairId}`,
      );
      const challengerOnLeft = (side?.left_is === "a") === (side?.arm_a !== "control");
      const r = rnd();
      const choice = v.alwaysLeft
        ? "left"
        : r < 0.08
          ? "tie"
          : r < 0.12
            ? "both_bad"
            : rnd() < v.prefersChallenger === challengerOnLeft
              ? "left"
              : "right";
      const voted = await b.post("/api/votes", {
        token: pair.voteToken,
        choice,
        decisionMs: v.decisionMs + Math.round(rnd() * 900),
      });
      if (voted.status !== 201) throw new Error(`vote refused: ${voted.status} ${await voted.text()}`);
      cast++;
    }
  }
  return cast;
}

export async function seedPlatform(deps: Deps, app: Hono): Promise<SeededPlatform> {
  const base = await seedBaseModel(deps);
  await snapshot(deps, "snap_round1", 420, 300);
  await snapshot(deps, "snap_round2", 910, 120);
  await snapshot(deps, "snap_round3", 1480, 20);
  const adapter = (
    id: string,
    parent: string | null,
    snap: string,
    objective: string,
    space: string,
    status: "champion" | "retired" | "candidate",
    metrics: Record<string, number>,
  ) => ({
    id,
    baseModelId: base,
    parentAdapterId: parent,
    blobPrefix: `adapters/${id}/`,
    objective,
    space,
    rank: 4,
    alpha: 4,
    datasetSnapshotId: snap,
    trainingJobId: `job_${id}`,
    metrics,
    status,
    promotedAt: status === "candidate" ? null : new Date(),
    retiredAt: status === "retired" ? new Date() : null,
  });
  await deps.db.orm.insert(adapters).values([
    adapter("ad_r1_dpo", null, "snap_round1", "dpo", "latent", "retired", {
      heldout_implicit_acc: 0.61,
      loss: 0.66,
    }),
    adapter("ad_r2_dpo", "ad_r1_dpo", "snap_round2", "dpo", "latent", "champion", {
      heldout_implicit_acc: 0.68,
      loss: 0.62,
    }),
    adapter("ad_r3_cpo", "ad_r2_dpo", "snap_round3", "cpo", "ncp", "candidate", {
      heldout_implicit_acc: 0.71,
      loss: 0.58,
    }),
    adapter("ad_r3_sft", "ad_r2_dpo", "snap_round3", "sft", "latent", "candidate", {
      heldout_implicit_acc: 0.55,
      loss: 0.64,
    }),
  ]);
  const round = (id: string, snap: string, parent: string | null, status: "done" | "experimenting") => ({
    id,
    baseModelId: base,
    status,
    snapshotId: snap,
    parentAdapterId: parent,
    note: status === "done" ? "challenger promoted" : null,
  });
  await deps.db.orm
    .insert(loopRounds)
    .values([
      { ...round("round_1", "snap_round1", null, "done"), finishedAt: new Date() },
      { ...round("round_2", "snap_round2", "ad_r1_dpo", "done"), finishedAt: new Date() },
      round("round_3", "snap_round3", "ad_r2_dpo", "experimenting"),
    ]);
  const run = (
    adapterId: string,
    roundId: string,
    snap: string,
    objective: string,
    space: string,
    done: boolean,
  ): typeof trainingRuns.$inferInsert => ({
    id: `run_${adapterId}`,
    jobId: `job_${adapterId}`,
    roundId,
    baseModelId: base,
    adapterId,
    snapshotId: snap,
    objective,
    space,
    hyperParameters: { steps: 200, beta: 5000, learningRate: 1e-4, rank: 4 },
    status: done ? ("succeeded" as const) : ("running" as const),
    progress: { step: done ? 200 : 120, totalSteps: 200, stepsPerSecond: 2.4, etaSeconds: done ? 0 : 33 },
    curve: done ? curve(200, 1) : curve(120, 0.8),
    metrics: done ? { heldout_implicit_acc: 0.68, loss: 0.6 } : {},
    startedAt: new Date(Date.now() - 600_000),
    finishedAt: done ? new Date() : null,
  });
  await deps.db.orm
    .insert(trainingRuns)
    .values([
      run("ad_r1_dpo", "round_1", "snap_round1", "dpo", "latent", true),
      run("ad_r2_dpo", "round_2", "snap_round2", "dpo", "latent", true),
      run("ad_r3_cpo", "round_3", "snap_round3", "cpo", "ncp", true),
      run("ad_r3_sft", "round_3", "snap_round3", "sft", "latent", true),
      run(`ad_r4_${randomUUID().slice(0, 6)}`, "round_3", "snap_round3", "dpo", "ncp", false),
    ]);
  const [running] = await rows<{ id: string }>(
    deps.db.orm,
    sql`select id from training_runs where status = 'running'`,
  );

  const exp = await startExperiment(
    deps,
    {
      name: "round 3: cpo/ncp and sft/latent vs the champion",
      arms: [
        { name: "control", adapterId: "ad_r2_dpo" },
        { name: "cpo-ncp", adapterId: "ad_r3_cpo" },
        { name: "sft-latent", adapterId: "ad_r3_sft" },
      ],
    },
    { origin: "loop", actor: "loop", roundId: "round_3" },
  );
  await deps.db.orm.execute(sql`update loop_rounds set experiment_id = ${exp.id} where id = 'round_3'`);
  await seedReadyPairs(deps, 100, {
    promptSetName: "round3-cpo",
    experimentId: exp.id,
    kind: "experiment",
    arms: ["control", "cpo-ncp"],
    adapters: ["ad_r2_dpo", "ad_r3_cpo"],
  });
  await seedReadyPairs(deps, 100, {
    promptSetName: "round3-sft",
    experimentId: exp.id,
    kind: "experiment",
    arms: ["sft-latent", "control"],
    adapters: ["ad_r3_sft", "ad_r2_dpo"],
  });
  // interleave the two challengers' pairs, as the allocator would serve them
  await deps.db.orm.execute(
    sql`update pairs set created_at = now() - (abs(hashtext(id)) % 3600) * interval '1 second' where experiment_id = ${exp.id}`,
  );
  const votes = await castVotes(deps, app, exp.id, [
    { n: 24, prefersChallenger: 0.5, decisionMs: 150, alwaysLeft: true },
    { n: 34, prefersChallenger: 0.75, decisionMs: 900 },
    { n: 34, prefersChallenger: 0.7, decisionMs: 1200 },
    { n: 30, prefersChallenger: 0.72, decisionMs: 1500 },
    { n: 30, prefersChallenger: 0.68, decisionMs: 800 },
    { n: 26, prefersChallenger: 0.74, decisionMs: 1100 },
    { n: 22, prefersChallenger: 0.7, decisionMs: 2000 },
  ]);
  await refreshVoterQuality(deps);
  return { experimentId: exp.id, runningRunId: running?.id ?? "", champion: "ad_r2_dpo", votes };
}
