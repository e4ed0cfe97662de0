/**
 * The scheduler tick: one turn of the loop's upkeep, called by the Node server's timer
 * (LOOP_CHECK_SECONDS) and by `lambda-scheduler` in AWS. A short list of named steps, each on
 * its own: a step that throws is logged and the next one still runs. Every step is idempotent,
 * so two ticks at once (two processes, two Lambdas) do each thing once.
 */
import type { Deps } from "../deps.js";
import { decideRunningExperiments } from "../experiments/decide.js";
import { startRoundExperiments } from "../experiments/startRoundExperiments.js";
import { refreshVoterQuality } from "../quality/refresh.js";
import { maybeStartRound, settleTrainingRounds, trainableBaseModels } from "./rounds.js";

export type TickDeps = Pick<Deps, "db" | "blobs" | "queue" | "config" | "log">;

export type TickReport = Record<string, { ok: true; result: unknown } | { ok: false; error: string }>;

const steps: [string, (deps: TickDeps) => Promise<unknown>][] = [
  ["refreshVoterQuality", refreshVoterQuality],
  ["decideRunningExperiments", decideRunningExperiments],
  ["settleTrainingRounds", settleTrainingRounds],
  ["startRoundExperiments", startRoundExperiments],
  ["maybeStartRounds", maybeStartRounds],
];

async function maybeStartRounds(deps: TickDeps): Promise<unknown[]> {
  const out: unknown[] = [];
  for (const baseModelId of await trainableBaseModels(deps.db)) {
    const { round, decision } = await maybeStartRound(deps, baseModelId);
    out.push(round ? { baseModelId, roundId: round.id, status: round.status } : decision);
  }
  return out;
}

export async function loopTick(deps: TickDeps): Promise<TickReport> {
  const report: TickReport = {};
  for (const [name, step] of steps) {
    try {
      report[name] = { ok: true, result: await step(deps) };
    } catch (err) {
      deps.log.error("loop tick step failed", { step: name, error: String(err) });
      report[name] = { ok: false, error: String(err) };
    }
  }
  return report;
}

/** Runs the tick every `seconds` (never two at once in this process); returns a stop function. */
export function startLoopTimer(deps: TickDeps, seconds = deps.config.loop.checkSeconds): () => Promise<void> {
  let running: Promise<unknown> | null = null;
  const timer = setInterval(() => {
    if (running) return;
    running = loopTick(deps).finally(() => {
      running = null;
    });
  }, seconds * 1000);
  return async () => {
    clearInterval(timer);
    await running;
  };
}
