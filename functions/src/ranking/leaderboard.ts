/**
 * The leaderboard service: reads the usable votes (`voting/usableVotes.ts`: no gold pairs, no
 * too-fast votes, no excluded voters), turns each into a battle between the models shown left and
 * right, and ranks the models with `domain/stats/leaderboard.ts`. A model is a base model plus an
 * adapter: the adapter id, or `base:<baseModelId>` for the base model alone.
 *
 * Models of different base models never meet in a pair, so their ratings are comparable only
 * within one base model: `baseModelId` narrows the board to one.
 *
 * Results are kept in process for `ttlMs` per (category, base model) (the route also sends
 * Cache-Control), and concurrent requests for the same board share one computation.
 */
import { sql } from "drizzle-orm";
import type { Deps } from "../deps.js";
import { bootstrapLeaderboard, type LeaderboardVote } from "../domain/stats/leaderboard.js";
import { rows } from "../platform/db/rows.js";
import { usableVoteCondition } from "../voting/usableVotes.js";

export const LEADERBOARD_METHOD =
  "Bradley–Terry maximum likelihood (ties and both-bad = ½, a left-position term, ridge 0.01), Elo scale (400 points = 10× odds, mean 1000); 95 % intervals from a voter-resampling bootstrap; rank = 1 + models whose lower bound is above this one's upper bound";

export interface LeaderboardModel {
  rank: number;
  model: string;
  adapterId: string | null;
  baseModelId: string;
  objective: string | null;
  status: string | null;
  rating: number;
  lower: number | null;
  upper: number | null;
  votes: number;
  wins: number;
  losses: number;
  ties: number;
  bothBad: number;
  bothBadRate: number;
  onlineElo: number;
}

export interface LeaderboardResult {
  category: string | null;
  baseModelId: string | null;
  categories: string[];
  generatedAt: string;
  votes: number;
  voters: number;
  rounds: number;
  seed: number;
  method: string;
  position: { leftWinProbability: number; eloPoints: number };
  models: LeaderboardModel[];
}

interface BattleRow {
  voter_id: string;
  choice: "left" | "right" | "tie" | "both_bad";
  left_model: string;
  right_model: string;
}

interface ModelInfo {
  model: string;
  adapter_id: string | null;
  base_model_id: string;
  objective: string | null;
  status: string | null;
}

/** The usable votes as battles, oldest first (online Elo reads them in order). */
/** Which votes a board reads: all usable votes, or one prompt category's, or one base model's. */
export interface BoardScope {
  category?: string | null;
  baseModelId?: string | null;
}

const scopeCondition = (scope: BoardScope) =>
  sql`${scope.category ? sql`and pr.category = ${scope.category}` : sql``} ${
    scope.baseModelId ? sql`and ga.base_model_id = ${scope.baseModelId}` : sql``
  }`;

async function usableBattles(deps: Pick<Deps, "db">, scope: BoardScope): Promise<LeaderboardVote[]> {
  const model = (g: string) => `coalesce(${g}.adapter_id, 'base:' || ${g}.base_model_id)`;
  const found = await rows<BattleRow>(
    deps.db.orm,
    sql`select v.voter_id, v.choice,
          case when p.left_is = 'b' then ${sql.raw(model("gb"))} else ${sql.raw(model("ga"))} end as left_model,
          case when p.left_is = 'b' then ${sql.raw(model("ga"))} else ${sql.raw(model("gb"))} end as right_model
        from votes v join pairs p on p.id = v.pair_id join voters vr on vr.id = v.voter_id
        join generations ga on ga.id = p.generation_a_id join generations gb on gb.id = p.generation_b_id
        join prompts pr on pr.id = p.prompt_id
        where ${usableVoteCondition()} ${scopeCondition(scope)}
        order by v.created_at, v.id`,
  );
  return found.map((r) => ({
    voterId: r.voter_id,
    left: r.left_model,
    right: r.right_model,
    outcome: r.choice === "left" ? 1 : r.choice === "right" ? 0 : 0.5,
    bothBad: r.choice === "both_bad",
  }));
}

/** Prompt categories that have usable votes (of one base model's pairs, when given). */
async function usableCategories(deps: Pick<Deps, "db">, baseModelId: string | null): Promise<string[]> {
  const found = await rows<{ category: string }>(
    deps.db.orm,
    sql`select distinct pr.category from votes v join pairs p on p.id = v.pair_id join voters vr on vr.id = v.voter_id
        join prompts pr on pr.id = p.prompt_id join generations ga on ga.id = p.generation_a_id
        where ${usableVoteCondition()} and pr.category is not null ${scopeCondition({ baseModelId })}
        order by pr.category`,
  );
  return found.map((r) => r.category);
}

async function modelInfo(deps: Pick<Deps, "db">, models: string[]): Promise<Map<string, ModelInfo>> {
  const info = new Map<string, ModelInfo>();
  const adapterIds = models.filter((m) => !m.startsWith("base:"));
  if (adapterIds.length > 0) {
    const found = await rows<ModelInfo>(
      deps.db.orm,
      sql`select id as model, id as adapter_id, base_model_id, objective, status from adapters
          where id in (${sql.join(
            adapterIds.map((id) => sql`${id}`),
            sql`, `,
          )})`,
    );
    for (const r of found) info.set(r.model, r);
  }
  for (const m of models)
    if (m.startsWith("base:"))
      info.set(m, { model: m, adapter_id: null, base_model_id: m.slice(5), objective: null, status: null });
  return info;
}

export class UnknownCategoryError extends Error {}

export interface LeaderboardService {
  /** The leaderboard of all usable votes, or of one prompt category's, or one base model's. */
  get(scope?: BoardScope): Promise<LeaderboardResult>;
}

export function leaderboardService(
  deps: Pick<Deps, "db">,
  opts: { ttlMs?: number; rounds?: number; seed?: number; now?: () => number } = {},
): LeaderboardService {
  const ttlMs = opts.ttlMs ?? 60_000;
  const now = opts.now ?? Date.now;
  const cache = new Map<string, { at: number; value: Promise<LeaderboardResult> }>();

  async function compute(category: string | null, baseModelId: string | null): Promise<LeaderboardResult> {
    const categories = await usableCategories(deps, baseModelId);
    if (category !== null && !categories.includes(category)) throw new UnknownCategoryError(category);
    const battles = await usableBattles(deps, { category, baseModelId });
    const board = bootstrapLeaderboard(battles, { rounds: opts.rounds ?? 200, seed: opts.seed ?? 1 });
    const info = await modelInfo(
      deps,
      board.rows.map((r) => r.model),
    );
    const finite = (x: number) => (Number.isFinite(x) ? x : null);
    return {
      category,
      baseModelId,
      categories,
      generatedAt: new Date(now()).toISOString(),
      votes: board.votes,
      voters: board.voters,
      rounds: board.rounds,
      seed: board.seed,
      method: LEADERBOARD_METHOD,
      position: board.position,
      models: board.rows.map((r) => {
        const m = info.get(r.model);
        return {
          rank: r.rank,
          model: r.model,
          adapterId: m?.adapter_id ?? null,
          baseModelId: m?.base_model_id ?? "",
          objective: m?.objective ?? null,
          status: m?.status ?? null,
          rating: r.rating,
          lower: finite(r.lower),
          upper: finite(r.upper),
          votes: r.votes,
          wins: r.wins,
          losses: r.losses,
          ties: r.ties,
          bothBad: r.bothBad,
          bothBadRate: r.bothBadRate,
          onlineElo: r.onlineElo,
        };
      }),
    };
  }

  return {
    get(scope = {}) {
      const category = scope.category ?? null;
      const baseModelId = scope.baseModelId ?? null;
      const key = JSON.stringify([category, baseModelId]);
      const hit = cache.get(key);
      if (hit && now() - hit.at < ttlMs) return hit.value;
      const value = compute(category, baseModelId);
      cache.set(key, { at: now(), value });
      // A failed computation is not kept.
      value.catch(() => cache.delete(key));
      return value;
    },
  };
}
