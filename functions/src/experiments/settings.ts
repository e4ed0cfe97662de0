/**
 * An experiment's decision settings, frozen into `experiments.settings` when it starts: a later
 * change of the configuration never changes the rule an experiment already runs under.
 */
import type { Config } from "../config.js";
import type { DecisionSettings, GuardrailLimits } from "../domain/experimentDecision.js";

export interface ExperimentSettings extends DecisionSettings, GuardrailLimits {
  /** Error rate of the anytime-valid decisions, shared across the challenger arms. */
  alpha: number;
  /** Share of ordinary traffic the experiment gets (EXPERIMENT_TRAFFIC_SHARE at start). */
  trafficShare: number;
}

export type SettingsOverrides = Partial<
  Pick<ExperimentSettings, "margin" | "minVotes" | "maxVotes" | "alpha">
>;

/** The settings a new experiment starts with: the configuration, then the caller's overrides. */
export function settingsAtStart(
  config: Pick<Config, "experiments">,
  overrides: SettingsOverrides = {},
): ExperimentSettings {
  const e = config.experiments;
  return {
    margin: overrides.margin ?? e.margin,
    minVotes: overrides.minVotes ?? e.minVotes,
    maxVotes: overrides.maxVotes ?? e.maxVotes,
    alpha: overrides.alpha ?? e.alpha,
    trafficShare: e.trafficShare,
    ...e.guardrails,
  };
}

/** Reads frozen settings; a key missing from an older row falls back to the configuration. */
export function frozenSettings(
  stored: Record<string, number>,
  config: Pick<Config, "experiments">,
): ExperimentSettings {
  const fallback = settingsAtStart(config);
  const out = { ...fallback };
  for (const k of Object.keys(fallback) as (keyof ExperimentSettings)[]) {
    const v = stored[k];
    if (typeof v === "number" && Number.isFinite(v)) out[k] = v;
  }
  return out;
}
