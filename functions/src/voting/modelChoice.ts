/**
 * Which model renders the pairs of each traffic class: the serving base model (the newest
 * registered) with its current champion adapter (`adapters.status = 'champion'`, or the bare
 * base model when there is none) for data, gold and voter-prompt pairs; an experiment's own
 * base model and arms for its pairs. Read fresh at each top-up, so a newly promoted champion is
 * used for new pairs at once.
 */
import { eq, sql } from "drizzle-orm";
import { currentChampion } from "../adapters/registry.js";
import { baseModels, experiments } from "../db/schema.js";
import type { Arm } from "../domain/pairing.js";
import type { Db } from "../platform/db/port.js";

export interface ServingModel {
  baseModelId: string;
  width: number;
  height: number;
}

export interface ChampionModel extends ServingModel {
  /** The champion adapter, or null for the bare base model. */
  championId: string | null;
}

export interface ExperimentModel extends ServingModel {
  experimentId: string;
  arms: Arm[];
  allocation: number[];
  promptSetId: string | null;
  status: string;
}

/** The champion adapter of a base model (the adapter registry's), or null when the base model itself serves. */
export async function championOf(db: Db, baseModelId: string): Promise<string | null> {
  return (await currentChampion(db, baseModelId))?.id ?? null;
}

/** The serving base model (the newest registered) and its champion, or null when none is registered. */
export async function servingModel(db: Db): Promise<ChampionModel | null> {
  const [m] = await db.orm
    .select({ id: baseModels.id, width: baseModels.width, height: baseModels.height })
    .from(baseModels)
    .orderBy(sql`${baseModels.createdAt} desc`, baseModels.id)
    .limit(1);
  if (!m) return null;
  return { baseModelId: m.id, width: m.width, height: m.height, championId: await championOf(db, m.id) };
}

/** An experiment's base model and arms (any status; callers check it is running). */
export async function experimentModel(db: Db, experimentId: string): Promise<ExperimentModel | null> {
  const [e] = await db.orm
    .select({
      arms: experiments.arms,
      allocation: experiments.allocation,
      promptSetId: experiments.promptSetId,
      status: experiments.status,
      model: baseModels,
    })
    .from(experiments)
    .innerJoin(baseModels, eq(baseModels.id, experiments.baseModelId))
    .where(eq(experiments.id, experimentId));
  if (!e) return null;
  return {
    experimentId,
    baseModelId: e.model.id,
    width: e.model.width,
    height: e.model.height,
    arms: e.arms,
    allocation: e.allocation,
    promptSetId: e.promptSetId,
    status: e.status,
  };
}

export interface RunningExperiment {
  id: string;
  promptSetId: string | null;
  arms: Arm[];
  allocation: number[];
}

/** The experiments now running (their pairs get a share of traffic). */
export async function runningExperiments(db: Db): Promise<RunningExperiment[]> {
  return db.orm
    .select({
      id: experiments.id,
      promptSetId: experiments.promptSetId,
      arms: experiments.arms,
      allocation: experiments.allocation,
    })
    .from(experiments)
    .where(eq(experiments.status, "running"))
    .orderBy(experiments.createdAt, experiments.id);
}
