/**
 * Loop rounds on the real PostgreSQL server (two ticks really at once) and PGlite: when a round
 * starts and when not, one round from concurrent ticks, its snapshot and jobs, progress and
 * results moving runs and rounds on, and the next round training from the promoted champion.
 */
import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { promoteAdapter } from "../../functions/src/adapters/registry.js";
import { type TrainingJob, trainingJob } from "../../functions/src/contracts/jobs.js";
import { adapters, experiments, jobs, loopRounds, trainingRuns } from "../../functions/src/db/schema.js";
import { maybeStartRound, roundDecision, settleRound } from "../../functions/src/loop/rounds.js";
import { loopTick } from "../../functions/src/loop/tick.js";
import { blobUri } from "../../functions/src/platform/blob/uri.js";
import { handleResultMessage } from "../../functions/src/training/results.js";
import { type Harness, openHarness } from "../api/votingHarness.js";
import { seedVotes } from "../snapshots/seedVotes.js";

const env = {
  LOOP_MIN_VOTES: "6",
  LOOP_OBJECTIVES: "dpo:latent,kto:latent",
  LOOP_STEPS: "3",
  LOOP_RANK: "2",
};

async function queuedJobs(h: Harness): Promise<TrainingJob[]> {
  const rows = await h.deps.db.orm.select().from(jobs).where(eq(jobs.queue, "training"));
  return rows.map((r) => trainingJob.parse(r.body));
}

describe.each(["postgres", "pglite"] as const)("loop rounds (%s)", (db) => {
  let h: Harness;
  beforeAll(async () => {
    h = await openHarness(db, env);
    await seedVotes(
      h.deps,
      Array.from({ length: 5 }, () => ({ choice: "left" as const })),
    );
    await h.deps.db.orm.execute(
      // the harness's base model, made trainable (a diffusers folder the worker would read)
      sql`update base_models set diffusers_uri = '/models/tiny', sha256 = ${"a".repeat(64)} where id = 'tiny'`,
    );
  }, 120_000);
  afterAll(async () => {
    await h?.close();
  });

  it("waits for LOOP_MIN_VOTES usable votes", async () => {
    expect(await roundDecision(h.deps, "tiny", new Date())).toMatchObject({
      start: false,
      newVotes: 5,
      reason: "5 new usable votes of the 6 a round needs",
    });
    await seedVotes(h.deps, [{ choice: "right", flags: ["too_fast"] }]);
    expect(await roundDecision(h.deps, "tiny", new Date())).toMatchObject({ start: false, newVotes: 5 });
  });

  it("starts one round from two ticks at once, with a snapshot and one job per objective", async () => {
    await seedVotes(h.deps, [{ choice: "tie" }, { choice: "both_bad" }]);
    const now = new Date();
    const [a, b] = await Promise.all([
      maybeStartRound(h.deps, "tiny", now),
      maybeStartRound(h.deps, "tiny", now),
    ]);
    const started = [a, b].filter((x) => x.round !== null);
    expect(started).toHaveLength(1);
    const rounds = await h.deps.db.orm.select().from(loopRounds);
    expect(rounds).toHaveLength(1);
    const round = rounds[0] as typeof loopRounds.$inferSelect;
    expect(round).toMatchObject({ status: "training", parentAdapterId: null });
    expect(round.snapshotId).toMatch(/^snap_/);
    const runs = await h.deps.db.orm.select().from(trainingRuns).where(eq(trainingRuns.roundId, round.id));
    expect(runs.map((r) => r.objective).sort()).toEqual(["dpo", "kto"]);
    const queued = await queuedJobs(h);
    expect(queued).toHaveLength(2);
    for (const job of queued) {
      expect(job.payload).toMatchObject({
        parentAdapterId: null,
        parentAdapterUri: null,
        datasetSnapshotId: round.snapshotId,
        datasetUri: blobUri(h.deps.config.blob, `snapshots/${round.snapshotId}/`),
        baseModelUri: "file:///models/tiny",
        steps: 3,
        rank: 2,
        beta: 5000,
      });
      expect(runs.map((r) => r.jobId)).toContain(job.id);
    }
    expect(await roundDecision(h.deps, "tiny", new Date())).toMatchObject({
      start: false,
      reason: `round ${round.id} is training`,
    });
  });

  it("shows progress, then finishes runs from results; a refused or failed run says why", async () => {
    const [dpo, kto] = (await queuedJobs(h)).sort((x, y) =>
      x.payload.objective.localeCompare(y.payload.objective),
    );
    const job = dpo as TrainingJob;
    const progress = (step: number, metrics: Record<string, number>[]) => ({
      version: 1,
      id: `${job.id}.progress.${step}`,
      createdAt: new Date().toISOString(),
      type: "training_progress",
      payload: {
        trainingJobId: job.id,
        adapterId: job.payload.adapterId,
        step,
        totalSteps: 3,
        stepsPerSecond: 0.5,
        etaSeconds: (3 - step) * 2,
        phase: "training",
        metrics,
      },
    });
    await handleResultMessage(h.deps, progress(1, [{ step: 1, loss: 0.69 }]));
    await handleResultMessage(h.deps, progress(1, [{ step: 1, loss: 0.69 }])); // redelivered
    await handleResultMessage(h.deps, progress(2, [{ step: 2, loss: 0.6 }]));
    const [running] = await h.deps.db.orm.select().from(trainingRuns).where(eq(trainingRuns.jobId, job.id));
    expect(running).toMatchObject({
      status: "running",
      progress: { step: 2, totalSteps: 3, stepsPerSecond: 0.5, etaSeconds: 2 },
      curve: [
        { step: 1, loss: 0.69 },
        { step: 2, loss: 0.6 },
      ],
    });
    expect(running?.startedAt).toBeInstanceOf(Date);

    // dpo publishes an adapter whose manifest names another base hash: refused, run failed.
    const prefix = `adapters/${job.payload.adapterId}/`;
    await h.deps.blobs.put(`${prefix}pytorch_lora_weights.safetensors`, new Uint8Array([1]));
    await h.deps.blobs.put(
      `${prefix}manifest.json`,
      new TextEncoder().encode(JSON.stringify({ baseModelId: "tiny", baseModelSha256: "b".repeat(64) })),
    );
    const result = (j: TrainingJob, status: "succeeded" | "failed", error: string | null = null) => ({
      version: 1,
      id: `${j.id}.result`,
      createdAt: new Date().toISOString(),
      type: "training_result",
      payload: {
        trainingJobId: j.id,
        adapterId: j.payload.adapterId,
        status,
        adapterUri: status === "succeeded" ? j.payload.outputUri : null,
        metrics: {},
        error,
      },
    });
    await handleResultMessage(h.deps, result(job, "succeeded"));
    const [refused] = await h.deps.db.orm.select().from(trainingRuns).where(eq(trainingRuns.jobId, job.id));
    expect(refused?.status).toBe("failed");
    expect(refused?.error).toMatch(/adapter refused: .*trained on a base model with hash bbbb/);

    const other = kto as TrainingJob;
    await handleResultMessage(
      h.deps,
      result(other, "failed", `parent adapter ${other.payload.parentAdapterId ?? "x"} could not be read`),
    );
    const [round] = await h.deps.db.orm.select().from(loopRounds);
    expect(round?.status).toBe("failed");
    expect(round?.note).toMatch(
      /no adapter was registered \(dpo\/latent: adapter refused: .*; kto\/latent: parent adapter/,
    );
  });

  it("trains the next round from the promoted champion, counting votes after its snapshot", async () => {
    // A challenger of the failed round's snapshot, registered by hand and promoted.
    const [failed] = await h.deps.db.orm.select().from(loopRounds);
    await h.deps.db.orm.insert(adapters).values({
      id: "champ-1",
      baseModelId: "tiny",
      blobPrefix: "adapters/champ-1/",
      datasetSnapshotId: failed?.snapshotId ?? null,
    });
    await promoteAdapter(h.deps.db, "champ-1", { actor: "test", reason: "won" });
    expect(await roundDecision(h.deps, "tiny", new Date())).toMatchObject({ start: false, newVotes: 0 });

    await seedVotes(
      h.deps,
      Array.from({ length: 6 }, () => ({ choice: "left" as const })),
      { start: new Date(Date.now() - 100), stepMs: 1 },
    );
    const report = await loopTick(h.deps);
    expect(report.maybeStartRounds).toMatchObject({ ok: true });
    const rounds = await h.deps.db.orm.select().from(loopRounds).where(eq(loopRounds.status, "training"));
    expect(rounds).toHaveLength(1);
    expect(rounds[0]?.parentAdapterId).toBe("champ-1");
    const jobsNow = (await queuedJobs(h)).filter((j) => j.payload.parentAdapterId === "champ-1");
    expect(jobsNow).toHaveLength(2);
    expect(jobsNow[0]?.payload.parentAdapterUri).toBe(blobUri(h.deps.config.blob, "adapters/champ-1/"));
  });

  it("starts nothing while an experiment runs or the loop is off", async () => {
    const [r] = await h.deps.db.orm.select().from(loopRounds).where(eq(loopRounds.status, "training"));
    await h.deps.db.orm
      .update(loopRounds)
      .set({ status: "done" })
      .where(eq(loopRounds.id, r?.id ?? ""));
    await h.deps.db.orm.insert(experiments).values({
      id: "exp-running",
      name: "x",
      baseModelId: "tiny",
      arms: [],
      allocation: [],
      status: "running",
    });
    await seedVotes(
      h.deps,
      Array.from({ length: 6 }, () => ({ choice: "left" as const })),
    );
    expect(await roundDecision(h.deps, "tiny", new Date())).toMatchObject({
      start: false,
      reason: "experiment exp-running is running",
    });
    const off = { ...h.deps, config: { ...h.deps.config, loop: { ...h.deps.config.loop, enabled: false } } };
    expect(await roundDecision(off, "tiny", new Date())).toMatchObject({
      start: false,
      reason: expect.stringMatching(/LOOP_ENABLED/),
    });
    expect(await settleRound(h.deps, "no-such-round")).toBeNull();
  });

  it("starts no more rounds than LOOP_MAX_ROUNDS", async () => {
    await h.deps.db.orm
      .update(experiments)
      .set({ status: "stopped" })
      .where(eq(experiments.id, "exp-running"));
    const rounds = (await h.deps.db.orm.select().from(loopRounds).where(eq(loopRounds.baseModelId, "tiny")))
      .length;
    const limited = (maxRounds: number) => ({
      ...h.deps,
      config: { ...h.deps.config, loop: { ...h.deps.config.loop, maxRounds } },
    });
    await seedVotes(
      h.deps,
      Array.from({ length: 6 }, () => ({ choice: "left" as const })),
      { start: new Date(Date.now() - 100), stepMs: 1 },
    );
    const now = new Date();
    const unlimited = await roundDecision(h.deps, "tiny", now);
    expect(unlimited).toMatchObject({ start: true });
    expect(await roundDecision(limited(rounds + 1), "tiny", now)).toEqual(unlimited);
    expect(rounds).toBeGreaterThan(0);
    expect(await roundDecision(limited(rounds), "tiny", now)).toMatchObject({
      start: false,
      reason: `${rounds} round(s) have run, the most LOOP_MAX_ROUNDS = ${rounds} allows`,
    });
  });
});
