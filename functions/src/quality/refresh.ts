/**
 * The rater-quality service: re-checks every voter who voted since their last check and records
 * the result on the voter (`quality_flags`, gold counts, `quality_checked_at`, `excluded`).
 *
 * The tests themselves are pure (`domain/stats/raterQuality.ts`); this file loads votes, builds
 * the population counts the outlier test compares against (everyone else's votes on the same
 * model pair) and writes the verdicts. Flagged voters' votes stay stored; `excluded` takes them
 * out of snapshots, rankings and experiments (`voting/usableVotes.ts`). A person's override
 * (`quality_override`: `include` or `exclude`) wins over the flags.
 */
import { sql } from "drizzle-orm";
import type { VoterFlag } from "../db/schema.js";
import type { Deps } from "../deps.js";
import { assessRater, orientVote, type RaterVote, type VoteChoice } from "../domain/stats/raterQuality.js";
import { rows } from "../platform/db/rows.js";

interface VoteRow {
  voter_id: string;
  choice: VoteChoice;
  decision_ms: number | null;
  gold: boolean;
  gold_answer: string | null;
  left_is: "a" | "b";
  model_a: string;
  model_b: string;
}

interface VoterRow {
  id: string;
  quality_flags: VoterFlag[];
  quality_override: string | null;
}

/** Voters re-checked per batch of queries. */
const BATCH = 500;

/** The columns both queries read: a vote with its pair's gold answer, placement and models. */
const VOTE_COLUMNS = sql.raw(`v.voter_id, v.choice, v.decision_ms,
  (p.kind = 'gold' or p.is_gold) as gold, p.gold_answer, coalesce(p.left_is, 'a') as left_is,
  coalesce(ga.adapter_id, 'base:' || ga.base_model_id) as model_a,
  coalesce(gb.adapter_id, 'base:' || gb.base_model_id) as model_b
  from votes v join pairs p on p.id = v.pair_id
  join generations ga on ga.id = p.generation_a_id join generations gb on gb.id = p.generation_b_id`);

function sides(r: Pick<VoteRow, "left_is" | "model_a" | "model_b">): { left: string; right: string } {
  return r.left_is === "b" ? { left: r.model_b, right: r.model_a } : { left: r.model_a, right: r.model_b };
}

/**
 * Wins and losses of everyone on each oriented model pair (ties are left out, as in FastChat),
 * excluded voters left out: a crowd of spammers must not become the standard others are held to.
 */
async function populationCounts(
  deps: Pick<Deps, "db">,
): Promise<Map<string, { wins: number; losses: number }>> {
  const grouped = await rows<
    Pick<VoteRow, "choice" | "left_is" | "model_a" | "model_b"> & { n: string | number }
  >(
    deps.db.orm,
    sql`select choice, left_is, model_a, model_b, count(*) as n from (
      select ${VOTE_COLUMNS} join voters vr on vr.id = v.voter_id
      where not (p.kind = 'gold' or p.is_gold) and v.choice in ('left', 'right') and not vr.excluded
    ) t group by choice, left_is, model_a, model_b`,
  );
  const counts = new Map<string, { wins: number; losses: number }>();
  for (const r of grouped) {
    const { left, right } = sides(r);
    const o = orientVote(left, right, r.choice);
    const c = counts.get(o.unit) ?? { wins: 0, losses: 0 };
    if (o.vote === 1) c.wins += Number(r.n);
    else c.losses += Number(r.n);
    counts.set(o.unit, c);
  }
  return counts;
}

/** Voters re-checked per call at most (never-checked first, then the longest unchecked); the rest wait for the next tick. */
export const MAX_VOTERS_PER_REFRESH = 5000;

/** Re-checks the voters with votes newer than their last check; returns how many and how many are flagged. */
export async function refreshVoterQuality(
  deps: Pick<Deps, "db" | "config" | "log">,
  opts: { maxVoters?: number } = {},
): Promise<{ checked: number; flagged: number }> {
  const [clock] = await rows<{ now: string }>(deps.db.orm, sql`select now()::text as now`);
  const checkedAt = (clock as { now: string }).now;
  const due = await rows<VoterRow>(
    deps.db.orm,
    sql`select vr.id, vr.quality_flags, vr.quality_override from voters vr
        where exists (select 1 from votes v where v.voter_id = vr.id
          and (vr.quality_checked_at is null or v.created_at > vr.quality_checked_at))
        order by vr.quality_checked_at nulls first, vr.id limit ${opts.maxVoters ?? MAX_VOTERS_PER_REFRESH}`,
  );
  if (due.length === 0) return { checked: 0, flagged: 0 };
  const population = await populationCounts(deps);
  const { alpha, minDecisionMs } = deps.config.quality;
  let flagged = 0;
  for (let i = 0; i < due.length; i += BATCH) {
    const batch = due.slice(i, i + BATCH);
    const ids = sql.join(
      batch.map((b) => sql`${b.id}`),
      sql`, `,
    );
    const voteRows = await rows<VoteRow>(
      deps.db.orm,
      sql`select ${VOTE_COLUMNS} where v.voter_id in (${ids}) order by v.voter_id, v.created_at, v.id`,
    );
    const byVoter = new Map<string, VoteRow[]>();
    for (const r of voteRows) byVoter.set(r.voter_id, [...(byVoter.get(r.voter_id) ?? []), r]);
    const verdicts = batch.map((voter) => {
      const result = assessRater(raterVotes(byVoter.get(voter.id) ?? [], population), {
        alpha,
        minDecisionMs,
      });
      const at = new Date().toISOString();
      const flags: VoterFlag[] = result.flags.map((f) => ({
        code: f.code,
        reason: f.reason,
        numbers: f.numbers,
        at: voter.quality_flags.find((old) => old.code === f.code)?.at ?? at,
      }));
      if (flags.length > 0) flagged++;
      return sql`(${voter.id}, ${JSON.stringify(flags)}::jsonb, ${result.goldVotes}::int, ${result.goldCorrect}::int)`;
    });
    // One statement per batch; `excluded` reads the override as it is now, so a person's word
    // given during the check is never overwritten.
    await deps.db.orm.execute(
      sql`update voters as vr set quality_flags = x.flags, gold_votes = x.gold_votes, gold_correct = x.gold_correct,
            quality_checked_at = ${checkedAt}::timestamptz,
            excluded = vr.quality_override is not distinct from 'exclude'
              or (jsonb_array_length(x.flags) > 0 and vr.quality_override is distinct from 'include')
          from (values ${sql.join(verdicts, sql`, `)}) as x(id, flags, gold_votes, gold_correct)
          where vr.id = x.id`,
    );
  }
  deps.log.info("voter quality refreshed", { checked: due.length, flagged });
  return { checked: due.length, flagged };
}

/** A voter's rows as the tests see them, with everyone else's counts on each model pair. */
function raterVotes(own: VoteRow[], population: Map<string, { wins: number; losses: number }>): RaterVote[] {
  // Leave the voter's own decisive votes out of the population they are compared with.
  const mine = new Map<string, { wins: number; losses: number }>();
  const oriented = own.map((r) => {
    const { left, right } = sides(r);
    const o = orientVote(left, right, r.choice);
    if (!r.gold && o.vote !== 0.5) {
      const c = mine.get(o.unit) ?? { wins: 0, losses: 0 };
      if (o.vote === 1) c.wins++;
      else c.losses++;
      mine.set(o.unit, c);
    }
    return o;
  });
  return own.map((r, k) => {
    const o = oriented[k] as { unit: string; vote: 0 | 0.5 | 1 };
    if (r.gold) {
      const cleanSide = r.gold_answer === null ? undefined : r.gold_answer === r.left_is ? "left" : "right";
      return { choice: r.choice, decisionMs: r.decision_ms, goldCleanSide: cleanSide };
    }
    const all = population.get(o.unit) ?? { wins: 0, losses: 0 };
    const self = mine.get(o.unit) ?? { wins: 0, losses: 0 };
    return {
      choice: r.choice,
      decisionMs: r.decision_ms,
      outlier: {
        vote: o.vote,
        populationWins: Math.max(0, all.wins - self.wins),
        populationLosses: Math.max(0, all.losses - self.losses),
      },
    };
  });
}
