/**
 * The scheduler tick's step that starts a loop round's experiment: for each round in
 * `experimenting` without one, the current champion (or the base model) against the adapters the
 * round's training runs registered — one challenger is an A/B test, several are the tournament
 * of LOOP_OBJECTIVES, one multi-arm experiment with error control across arms. Idempotent: the
 * round is linked in the same transaction as the experiment is created.
 */
import { and, eq, inArray, isNull } from "drizzle-orm";
import { currentChampion } from "../adapters/registry.js";
import type { Config } from "../config.js";
import { adapters, loopRounds, trainingRuns } from "../db/schema.js";
import type { Arm } from "../domain/pairing.js";
import type { Db } from "../platform/db/port.js";
import type { Logger } from "../platform/log.js";
import { startExperiment } from "./start.js";

/** The arms of a round's experiment: the champion first, then one arm per registered challenger. */
export async function roundArms(db: Db, round: { id: string; baseModelId: string }): Promise<Arm[]> {
  const champion = await currentChampion(db, round.baseModelId);
  const runs = await db.orm
    .select({
      adapterId: trainingRuns.adapterId,
      objective: trainingRuns.objective,
      space: trainingRuns.space,
    })
    .from(trainingRuns)
    .where(and(eq(trainingRuns.roundId, round.id), eq(trainingRuns.status, "succeeded")))
    .orderBy(trainingRuns.createdAt, trainingRuns.id);
  const registered = runs.length
    ? await db.orm
        .select({ id: adapters.id, status: adapters.status })
        .from(adapters)
        .where(
          inArray(
            adapters.id,
            runs.map((r) => r.adapterId),
          ),
        )
    : [];
  const arms: Arm[] = [{ name: "champion", adapterId: champion?.id ?? null }];
  for (const r of runs) {
    if (!registered.some((a) => a.id === r.adapterId && a.status === "candidate")) continue;
    let name = `${r.objective}:${r.space}`;
    for (let k = 2; arms.some((a) => a.name === name); k++) name = `${r.objective}:${r.space}:${k}`;
    arms.push({ name, adapterId: r.adapterId });
  }
  return arms;
}

export async function startRoundExperiments(deps: {
  db: Db;
  config: Pick<Config, "experiments">;
  log: Logger;
}): Promise<{ roundId: string; experimentId: string | null; arms: number }[]> {
  const waiting = await deps.db.orm
    .select({ id: loopRounds.id, baseModelId: loopRounds.baseModelId })
    .from(loopRounds)
    .where(and(eq(loopRounds.status, "experimenting"), isNull(loopRounds.experimentId)));
  const out: { roundId: string; experimentId: string | null; arms: number }[] = [];
  for (const round of waiting) {
    const arms = await roundArms(deps.db, round);
    if (arms.length < 2) {
      await deps.db.orm
        .update(loopRounds)
        .set({
          status: "failed",
          finishedAt: new Date(),
          note: "no registered challenger to put against the champion",
        })
        .where(
          and(
            eq(loopRounds.id, round.id),
            eq(loopRounds.status, "experimenting"),
            isNull(loopRounds.experimentId),
          ),
        );
      out.push({ roundId: round.id, experimentId: null, arms: arms.length });
      continue;
    }
    const started = await startExperiment(
      deps,
      {
        name: `round ${round.id.slice(-8)}: ${arms
          .slice(1)
          .map((a) => a.name)
          .join(", ")} vs champion`,
        arms,
      },
      { origin: "loop", actor: "loop", roundId: round.id },
    );
    if (started.created)
      deps.log.info("experiment started", {
        experimentId: started.id,
        roundId: round.id,
        arms: arms.map((a) => a.name),
      });
    out.push({ roundId: round.id, experimentId: started.id, arms: arms.length });
  }
  return out;
}
