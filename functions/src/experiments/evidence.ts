/**
 * What the database holds about one experiment, read as plain rows for the statistics and the
 * decision rule: its usable votes in the challenger's view, and each arm's generations
 * (failures, latency). Only usable votes count (`usableVoteCondition`).
 */
import { sql } from "drizzle-orm";
import {
  type ArmOperations,
  type ChallengerResult,
  readExperimentVote,
} from "../domain/experimentDecision.js";
import type { Arm } from "../domain/pairing.js";
import type { Db } from "../platform/db/port.js";
import { rows } from "../platform/db/rows.js";
import { usableVoteCondition } from "../voting/usableVotes.js";

/** One usable vote of the experiment, from the challenger's side. */
export interface ExperimentOutcome {
  arm: string;
  voterId: string;
  result: ChallengerResult;
  challengerOnLeft: boolean;
  at: Date;
  category: string | null;
}

interface VoteRow {
  voter_id: string;
  choice: string;
  created_at: Date | string;
  arm_a: string | null;
  arm_b: string | null;
  left_is: "a" | "b" | null;
  category: string | null;
}

/** The experiment's usable votes, oldest first (pairs that are not control vs one challenger are skipped). */
export async function experimentOutcomes(
  db: Db,
  experimentId: string,
  control: string,
): Promise<ExperimentOutcome[]> {
  const found = await rows<VoteRow>(
    db.orm,
    sql`select v.voter_id, v.choice, v.created_at, p.arm_a, p.arm_b, p.left_is, pr.category
        from votes v
        join pairs p on p.id = v.pair_id
        join voters vr on vr.id = v.voter_id
        join prompts pr on pr.id = p.prompt_id
        where p.experiment_id = ${experimentId} and ${usableVoteCondition()}
        order by v.created_at, v.id`,
  );
  const out: ExperimentOutcome[] = [];
  for (const r of found) {
    const read = readExperimentVote(control, {
      armA: r.arm_a,
      armB: r.arm_b,
      leftIs: r.left_is,
      choice: r.choice,
    });
    if (read)
      out.push({
        arm: read.challenger,
        voterId: r.voter_id,
        result: read.result,
        challengerOnLeft: read.challengerOnLeft,
        at: new Date(r.created_at),
        category: r.category,
      });
  }
  return out;
}

interface OpsRow {
  arm: string;
  generations: number;
  failed: number;
  latency_median_ms: number | null;
}

/**
 * Each arm's finished generations in the experiment's pairs: how many, how many failed, and the
 * median latency of those that succeeded. Votes and both-bad counts come from the outcomes.
 */
export async function armOperations(
  db: Db,
  experimentId: string,
  arms: readonly Arm[],
  outcomes: readonly ExperimentOutcome[],
): Promise<ArmOperations[]> {
  const found = await rows<OpsRow>(
    db.orm,
    sql`with sides as (
          select p.arm_a as arm, p.generation_a_id as generation_id from pairs p
          where p.experiment_id = ${experimentId} and p.arm_a is not null
          union all
          select p.arm_b, p.generation_b_id from pairs p
          where p.experiment_id = ${experimentId} and p.arm_b is not null
        )
        select s.arm,
          count(*) filter (where g.status in ('succeeded', 'failed'))::int as generations,
          count(*) filter (where g.status = 'failed')::int as failed,
          (percentile_cont(0.5) within group (order by g.latency_ms)
            filter (where g.status = 'succeeded' and g.latency_ms is not null))::float8 as latency_median_ms
        from sides s join generations g on g.id = s.generation_id
        group by s.arm`,
  );
  return arms.map((a) => {
    const r = found.find((f) => f.arm === a.name);
    const mine = outcomes.filter((o) => o.arm === a.name);
    return {
      arm: a.name,
      generations: r?.generations ?? 0,
      failed: r?.failed ?? 0,
      latencyMedianMs: r?.latency_median_ms ?? null,
      votes: mine.length,
      bothBad: mine.filter((o) => o.result === "both_bad").length,
    };
  });
}
