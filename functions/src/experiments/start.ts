/**
 * Starting an experiment: the control (arm 0, usually the champion) against one or more
 * challengers, all on one base model. The settings are frozen at start, the start is recorded
 * in `experiment_decisions`, and an experiment of a loop round is linked to its round in the same
 * transaction, so two scheduler ticks at once start it once.
 */
import { randomUUID } from "node:crypto";
import { and, eq, inArray, isNull } from "drizzle-orm";
import type { Config } from "../config.js";
import {
  adapters,
  baseModels,
  experimentDecisions,
  experiments,
  loopRounds,
  promptSets,
} from "../db/schema.js";
import type { Arm } from "../domain/pairing.js";
import { ApiError } from "../http/errors.js";
import type { Db } from "../platform/db/port.js";
import {
  type ExperimentSettings,
  frozenSettings,
  type SettingsOverrides,
  settingsAtStart,
} from "./settings.js";

export const MAX_ARMS = 8;
export const ARM_NAME = /^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,63}$/;

export interface StartRequest {
  name?: string | undefined;
  /** The control first. An arm without an adapter is the base model alone. */
  arms: { name?: string | undefined; adapterId: string | null }[];
  /** Weights of the challengers (arm 0's entry is kept but unused); default: equal. */
  allocation?: number[] | undefined;
  baseModelId?: string | undefined;
  promptSetId?: string | null | undefined;
  settings?: SettingsOverrides | undefined;
}

export interface StartedExperiment {
  id: string;
  name: string;
  baseModelId: string;
  arms: Arm[];
  allocation: number[];
  settings: ExperimentSettings;
  /** False when the round already had its experiment (this call started nothing). */
  created: boolean;
}

const bad = (message: string) => new ApiError(400, "invalid_experiment", message);

/** Validates the arms against the registered adapters and resolves the base model. */
async function resolveArms(db: Db, req: StartRequest): Promise<{ arms: Arm[]; baseModelId: string }> {
  if (req.arms.length < 2 || req.arms.length > MAX_ARMS)
    throw bad(
      `An experiment needs between 2 and ${MAX_ARMS} arms (the control first); got ${req.arms.length}.`,
    );
  const arms = req.arms.map((a) => ({ name: a.name ?? a.adapterId ?? "base", adapterId: a.adapterId }));
  const names = new Set<string>();
  for (const a of arms) {
    if (!ARM_NAME.test(a.name))
      throw bad(
        `Arm name ${JSON.stringify(a.name)} must be 1–64 letters, digits or _ . : + - (starting with a letter or digit).`,
      );
    if (names.has(a.name)) throw bad(`Two arms are named ${JSON.stringify(a.name)}; arm names must differ.`);
    names.add(a.name);
  }
  const ids = [...new Set(arms.flatMap((a) => (a.adapterId ? [a.adapterId] : [])))];
  const found = ids.length
    ? await db.orm
        .select({ id: adapters.id, baseModelId: adapters.baseModelId, status: adapters.status })
        .from(adapters)
        .where(inArray(adapters.id, ids))
    : [];
  for (const id of ids) {
    const a = found.find((f) => f.id === id);
    if (!a)
      throw new ApiError(404, "adapter_not_found", `There is no registered adapter ${JSON.stringify(id)}.`);
    if (a.status === "retired") throw new ApiError(409, "adapter_retired", `Adapter ${id} is retired.`);
  }
  const bases = new Set(found.map((f) => f.baseModelId));
  if (req.baseModelId) bases.add(req.baseModelId);
  if (bases.size > 1)
    throw bad(`All arms must share one base model; these adapters belong to ${[...bases].join(", ")}.`);
  let baseModelId = [...bases][0];
  if (!baseModelId) {
    const models = await db.orm.select({ id: baseModels.id }).from(baseModels).limit(2);
    if (models.length !== 1)
      throw bad("Name the base model (baseModelId): no arm has an adapter to tell it.");
    baseModelId = (models[0] as { id: string }).id;
  }
  const [model] = await db.orm
    .select({ id: baseModels.id })
    .from(baseModels)
    .where(eq(baseModels.id, baseModelId));
  if (!model)
    throw new ApiError(404, "base_model_not_found", `There is no base model ${JSON.stringify(baseModelId)}.`);
  return { arms, baseModelId };
}

function resolveAllocation(arms: Arm[], given: number[] | undefined): number[] {
  if (!given) return arms.map(() => 1 / arms.length);
  if (given.length !== arms.length)
    throw bad(`allocation has ${given.length} weights for ${arms.length} arms.`);
  if (given.some((w) => !Number.isFinite(w) || w < 0)) throw bad("allocation weights must be numbers ≥ 0.");
  if (given.slice(1).every((w) => w === 0)) throw bad("allocation gives no traffic to any challenger.");
  return given;
}

function checkSettings(s: ExperimentSettings): void {
  if (!(s.margin >= 0 && s.margin < 0.49)) throw bad("settings.margin must be in [0, 0.49).");
  if (!(s.alpha > 0 && s.alpha <= 0.5)) throw bad("settings.alpha must be in (0, 0.5].");
  if (!(Number.isInteger(s.minVotes) && s.minVotes >= 1))
    throw bad("settings.minVotes must be an integer ≥ 1.");
  if (!(Number.isInteger(s.maxVotes) && s.maxVotes >= s.minVotes))
    throw bad("settings.maxVotes must be an integer ≥ minVotes.");
}

/**
 * Starts a running experiment. With `roundId`, the experiment is the round's and the round is
 * linked to it in the same transaction; when the round already has one, that one is returned.
 */
export async function startExperiment(
  deps: { db: Db; config: Pick<Config, "experiments"> },
  req: StartRequest,
  opts: { origin: "loop" | "manual"; actor: "loop" | "admin"; roundId?: string | null },
): Promise<StartedExperiment> {
  const { arms, baseModelId } = await resolveArms(deps.db, req);
  const allocation = resolveAllocation(arms, req.allocation);
  const settings = settingsAtStart(deps.config, req.settings);
  checkSettings(settings);
  if (req.promptSetId) {
    const [s] = await deps.db.orm
      .select({ id: promptSets.id })
      .from(promptSets)
      .where(eq(promptSets.id, req.promptSetId));
    if (!s) throw new ApiError(404, "prompt_set_not_found", "There is no such prompt set.");
  }
  const id = `exp_${randomUUID()}`;
  const name =
    req.name?.trim() ||
    `${arms
      .slice(1)
      .map((a) => a.name)
      .join(", ")} vs ${(arms[0] as Arm).name}`;
  const roundId = opts.roundId ?? null;
  const created = await deps.db.orm.transaction(async (tx) => {
    if (roundId) {
      const linked = await tx
        .update(loopRounds)
        .set({ experimentId: id })
        .where(
          and(
            eq(loopRounds.id, roundId),
            isNull(loopRounds.experimentId),
            eq(loopRounds.status, "experimenting"),
          ),
        )
        .returning({ id: loopRounds.id });
      if (linked.length === 0) return false;
    }
    await tx.insert(experiments).values({
      id,
      name,
      baseModelId,
      arms,
      allocation,
      promptSetId: req.promptSetId ?? null,
      status: "running",
      origin: opts.origin,
      roundId,
      settings: { ...settings },
      startedAt: new Date(),
      decision: {
        action: "continue",
        reason: "started",
        arms: arms.slice(1).map((a) => ({ arm: a.name, state: "collecting" })),
      },
    });
    await tx.insert(experimentDecisions).values({
      id: `dec_${randomUUID()}`,
      experimentId: id,
      action: "start",
      arm: null,
      reason: `${name}: ${arms.length - 1} challenger(s) against ${(arms[0] as Arm).name}`,
      actor: opts.actor,
      numbers: { arms, allocation, settings },
    });
    return true;
  });
  if (created) return { id, name, baseModelId, arms, allocation, settings, created: true };
  const [round] = await deps.db.orm
    .select({ experimentId: loopRounds.experimentId })
    .from(loopRounds)
    .where(eq(loopRounds.id, roundId as string));
  const [existing] = round?.experimentId
    ? await deps.db.orm.select().from(experiments).where(eq(experiments.id, round.experimentId))
    : [];
  if (!existing)
    throw new ApiError(409, "round_not_experimenting", `Round ${roundId} is not waiting for an experiment.`);
  return {
    id: existing.id,
    name: existing.name,
    baseModelId: existing.baseModelId,
    arms: existing.arms,
    allocation: existing.allocation,
    settings: frozenSettings(existing.settings, deps.config),
    created: false,
  };
}
