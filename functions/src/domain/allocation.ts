/**
 * Traffic allocation as pure functions: which class of pair a request for the next pair is
 * served from. The server decides, never the voter.
 *
 * - *gold* pairs (a generation vs a degraded copy of itself) get `goldRate` of all traffic;
 * - running *experiments* together get `experimentShare` of the ordinary (non-gold) traffic,
 *   split equally between them (each experiment splits its pairs across its challenger arms by
 *   its `allocation` when the pairs are planned, see `pickArms`);
 * - *data* pairs (the champion with two seeds) get the rest.
 */
import type { Random } from "./pairing.js";

export type TrafficClass = { kind: "data" } | { kind: "gold" } | { kind: "experiment"; experimentId: string };

export interface WeightedClass {
  traffic: TrafficClass;
  /** Probability of the class on one request; the weights of a plan sum to 1. */
  weight: number;
}

export interface TrafficShares {
  /** Share of all served pairs that are gold pairs, in [0, 1). */
  goldRate: number;
  /** Share of ordinary traffic all running experiments get together, in [0, 1]. */
  experimentShare: number;
}

const clamp01 = (x: number) => (Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0);

/**
 * The weight of each traffic class for one request, given the running experiments the request
 * may be served from. Classes with weight 0 are left out, so the plan only names classes that
 * can be drawn. With no experiment running, data pairs take the experiments' share too.
 */
export function trafficPlan(experimentIds: readonly string[], shares: TrafficShares): WeightedClass[] {
  const gold = clamp01(shares.goldRate);
  const ordinary = 1 - gold;
  const experiments = experimentIds.length > 0 ? ordinary * clamp01(shares.experimentShare) : 0;
  const plan: WeightedClass[] = [{ traffic: { kind: "data" }, weight: ordinary - experiments }];
  for (const experimentId of experimentIds) {
    plan.push({
      traffic: { kind: "experiment", experimentId },
      weight: experiments / experimentIds.length,
    });
  }
  plan.push({ traffic: { kind: "gold" }, weight: gold });
  return plan.filter((c) => c.weight > 0);
}

/** Draws one class of a plan: `random()` in [0, 1) against the cumulative weights. */
export function drawTraffic(plan: readonly WeightedClass[], random: Random): TrafficClass {
  if (plan.length === 0) return { kind: "data" };
  const total = plan.reduce((s, c) => s + c.weight, 0);
  let r = random() * total;
  for (const c of plan) {
    r -= c.weight;
    if (r < 0) return c.traffic;
  }
  return (plan.at(-1) as WeightedClass).traffic;
}

export const sameTraffic = (x: TrafficClass, y: TrafficClass): boolean =>
  x.kind === y.kind &&
  (x.kind !== "experiment" || (y.kind === "experiment" && x.experimentId === y.experimentId));

/**
 * The order in which classes are tried for one request: the drawn class first; when it has no
 * ready pair, data pairs (the platform's training data), then the experiments by decreasing
 * weight (their votes are training data too), so that a voter rarely waits. Gold pairs are
 * never a fallback: served only when drawn, they stay at their configured rate.
 */
export function fallbackOrder(plan: readonly WeightedClass[], drawn: TrafficClass): TrafficClass[] {
  const rest = plan
    .filter((c) => !sameTraffic(c.traffic, drawn) && c.traffic.kind !== "gold")
    .sort((x, y) => {
      const dataFirst = Number(y.traffic.kind === "data") - Number(x.traffic.kind === "data");
      return dataFirst !== 0 ? dataFirst : y.weight - x.weight;
    })
    .map((c) => c.traffic);
  return [drawn, ...rest];
}

/** A stable key of a class (pool scopes, logs). */
export function trafficKey(t: TrafficClass): string {
  return t.kind === "experiment" ? `experiment:${t.experimentId}` : t.kind;
}

/**
 * How many pairs each class's pool keeps ready or generating: `depth` for the busiest class and
 * a share proportional to its traffic for the others (at least `floor`), so that generation
 * capacity goes where the traffic goes (gold pairs at 5 % keep a small pool, not a full one).
 */
export function poolDepths(plan: readonly WeightedClass[], depth: number, floor = 2): number[] {
  const top = Math.max(0, ...plan.map((c) => c.weight));
  return plan.map((c) =>
    top > 0 ? Math.max(Math.min(floor, depth), Math.ceil((depth * c.weight) / top - 1e-9)) : depth,
  );
}

/**
 * The challengers (arms after the control) an experiment no longer gives traffic to: allocation
 * 0 or missing (retired or stopped in a running tournament). Their unserved pairs stay unserved.
 */
export function closedArms(arms: readonly { name: string }[], allocation: readonly number[]): string[] {
  return arms.filter((_, i) => i > 0 && !((allocation[i] ?? 0) > 0)).map((a) => a.name);
}
