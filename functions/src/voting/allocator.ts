/**
 * The traffic allocator: for each request of the next pair, draws the class it is served from
 * (data, gold, or one running experiment; weights from `domain/allocation.ts`) and claims a
 * ready pair of that class from the pool, falling back to data and experiment pairs when the
 * drawn class has none ready (never to gold pairs, which stay at their rate). It keeps every
 * class's pool topped up, each at a depth proportional to its traffic (`poolDepths`). Voters
 * never choose the class.
 *
 * Running experiments are read from the `experiments` table and cached for `experimentsTtlMs`
 * (2 s by default), so an experiment that starts or stops takes effect within that time; pairs
 * of an experiment that stopped, and of a challenger whose allocation became 0 (retired or
 * stopped in a running tournament), stay unserved.
 */
import {
  closedArms,
  drawTraffic,
  fallbackOrder,
  poolDepths,
  type TrafficClass,
  type TrafficShares,
  trafficPlan,
} from "../domain/allocation.js";
import type { Random } from "../domain/pairing.js";
import type { Db } from "../platform/db/port.js";
import { type RunningExperiment, runningExperiments } from "./modelChoice.js";
import {
  cryptoRandom,
  type PairPool,
  type PoolScope,
  type ServedPair,
  type TopUpResult,
} from "./pairPool.js";

export interface Allocation {
  /** The claimed pair, or null when no class has a ready pair. */
  pair: ServedPair | null;
  /** The class the draw chose (the pair may come from a fallback class). */
  drawn: TrafficClass;
  /** Every pool this request may be served from (to top up). */
  scopes: PoolScope[];
}

export class TrafficAllocator {
  private readonly random: Random;
  private readonly ttlMs: number;
  private cache: { at: number; experiments: Promise<RunningExperiment[]> } | null = null;

  constructor(
    private readonly deps: { db: Db },
    private readonly pool: PairPool,
    private readonly shares: TrafficShares,
    opts: { random?: Random; experimentsTtlMs?: number } = {},
  ) {
    this.random = opts.random ?? cryptoRandom;
    this.ttlMs = opts.experimentsTtlMs ?? 2_000;
  }

  /** Running experiments a request for `promptSetId` may be served from (theirs, or any-set experiments). */
  async experimentsFor(promptSetId: string | null): Promise<RunningExperiment[]> {
    const now = Date.now();
    if (!this.cache || now - this.cache.at > this.ttlMs) {
      const experiments = runningExperiments(this.deps.db);
      this.cache = { at: now, experiments };
      experiments.catch(() => {
        if (this.cache?.experiments === experiments) this.cache = null;
      });
    }
    // an experiment whose challengers are all closed gets no traffic (its decision is due)
    const open = (await this.cache.experiments).filter(
      (e) => closedArms(e.arms, e.allocation).length < e.arms.length - 1,
    );
    return promptSetId === null
      ? open
      : open.filter((e) => e.promptSetId === null || e.promptSetId === promptSetId);
  }

  /** Draws the class for one request and claims a pair (drawn class first, then the fallbacks). */
  async next(voterId: string, promptSetId: string | null): Promise<Allocation> {
    const experiments = await this.experimentsFor(promptSetId);
    const plan = trafficPlan(
      experiments.map((e) => e.id),
      this.shares,
    );
    const drawn = drawTraffic(plan, this.random);
    const scopeOf = (t: TrafficClass): PoolScope => {
      if (t.kind !== "experiment") return { experimentId: null, promptSetId, kind: t.kind };
      const e = experiments.find((x) => x.id === t.experimentId);
      return {
        experimentId: t.experimentId,
        promptSetId: promptSetId ?? e?.promptSetId ?? null,
        closedArms: e ? closedArms(e.arms, e.allocation) : [],
      };
    };
    const depths = poolDepths(plan, this.pool.depth);
    const scopes = plan.map((c, i) => ({ ...scopeOf(c.traffic), depth: depths[i] }));
    for (const t of fallbackOrder(plan, drawn)) {
      const pair = await this.pool.claim(scopeOf(t), voterId);
      if (pair) return { pair, drawn, scopes };
    }
    return { pair: null, drawn, scopes };
  }

  /** Tops up each pool (each at most every few seconds unless forced; see `PairPool.maybeTopUp`). */
  async topUp(scopes: readonly PoolScope[], force = false): Promise<(TopUpResult | null)[]> {
    const out: (TopUpResult | null)[] = [];
    for (const scope of scopes) out.push(await this.pool.maybeTopUp(scope, force));
    return out;
  }
}
