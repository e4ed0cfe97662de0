/**
 * Voters as admins see them: rater-quality flags with their reasons and numbers, gold accuracy,
 * vote counts, and a person's override (`include`: the flags no longer exclude; `exclude`).
 * Overrides take effect at once (`excluded` is rewritten here) and stay across later checks.
 */
import { sql } from "drizzle-orm";
import type { VoterFlag } from "../db/schema.js";
import type { Deps } from "../deps.js";
import { rows } from "../platform/db/rows.js";

export interface VoterQuality {
  id: string;
  createdAt: string;
  lastSeenAt: string | null;
  isDemo: boolean;
  excluded: boolean;
  qualityOverride: "include" | "exclude" | null;
  qualityFlags: VoterFlag[];
  qualityCheckedAt: string | null;
  goldVotes: number;
  goldCorrect: number;
  goldAccuracy: number | null;
  votes: number;
  lastVoteAt: string | null;
}

interface Row {
  id: string;
  created_at: string;
  last_seen_at: string | null;
  is_demo: boolean;
  excluded: boolean;
  quality_override: "include" | "exclude" | null;
  quality_flags: VoterFlag[];
  quality_checked_at: string | null;
  gold_votes: number;
  gold_correct: number;
  votes: string | number;
  last_vote_at: string | null;
}

const iso = (t: string | null) => (t === null ? null : new Date(t).toISOString());

function voterJson(r: Row): VoterQuality {
  return {
    id: r.id,
    createdAt: iso(r.created_at) as string,
    lastSeenAt: iso(r.last_seen_at),
    isDemo: r.is_demo,
    excluded: r.excluded,
    qualityOverride: r.quality_override,
    qualityFlags: r.quality_flags,
    qualityCheckedAt: iso(r.quality_checked_at),
    goldVotes: r.gold_votes,
    goldCorrect: r.gold_correct,
    goldAccuracy: r.gold_votes > 0 ? r.gold_correct / r.gold_votes : null,
    votes: Number(r.votes),
    lastVoteAt: iso(r.last_vote_at),
  };
}

const SELECT = sql.raw(`select vr.id, vr.created_at::text, vr.last_seen_at::text, vr.is_demo, vr.excluded,
  vr.quality_override, vr.quality_flags, vr.quality_checked_at::text, vr.gold_votes, vr.gold_correct,
  (select count(*) from votes v where v.voter_id = vr.id) as votes,
  (select max(v.created_at)::text from votes v where v.voter_id = vr.id) as last_vote_at
  from voters vr`);

export type VoterFilter = "all" | "flagged" | "excluded";

/** Voters who voted, flagged first (then most recent vote first); `filter` narrows the list. */
export async function listVoters(
  deps: Pick<Deps, "db">,
  opts: { filter?: VoterFilter; limit?: number; offset?: number } = {},
): Promise<{ voters: VoterQuality[]; total: number }> {
  const filter = opts.filter ?? "all";
  const where =
    filter === "flagged"
      ? sql`jsonb_array_length(vr.quality_flags) > 0`
      : filter === "excluded"
        ? sql`vr.excluded`
        : sql`exists (select 1 from votes v where v.voter_id = vr.id)`;
  const found = await rows<Row>(
    deps.db.orm,
    sql`${SELECT} where ${where}
        order by jsonb_array_length(vr.quality_flags) > 0 desc, last_vote_at desc nulls last, vr.id
        limit ${opts.limit ?? 50} offset ${opts.offset ?? 0}`,
  );
  const [count] = await rows<{ n: string | number }>(
    deps.db.orm,
    sql`select count(*) as n from voters vr where ${where}`,
  );
  return { voters: found.map(voterJson), total: Number(count?.n ?? 0) };
}

export async function findVoter(deps: Pick<Deps, "db">, id: string): Promise<VoterQuality | null> {
  const [r] = await rows<Row>(deps.db.orm, sql`${SELECT} where vr.id = ${id}`);
  return r ? voterJson(r) : null;
}

/** A person's word on a voter: `include` (flags stay visible, votes count) or `exclude`. Null if no such voter. */
export async function overrideVoter(
  deps: Pick<Deps, "db" | "log">,
  id: string,
  override: "include" | "exclude",
): Promise<VoterQuality | null> {
  const updated = await rows<{ id: string }>(
    deps.db.orm,
    sql`update voters set quality_override = ${override}, excluded = ${override === "exclude"} where id = ${id} returning id`,
  );
  if (updated.length === 0) return null;
  deps.log.info("voter quality override", { voterId: id, override });
  return findVoter(deps, id);
}
