/**
 * Recording votes: one vote per voter and pair, durably stored before it is acknowledged. Votes
 * are written in groups (`VoteBatcher`: one statement and one commit per group of concurrent
 * votes); the reads here are the voter's count and the admin search.
 */
import { sql } from "drizzle-orm";
import type { Choice } from "../domain/pairing.js";
import type { Db } from "../platform/db/port.js";
import { rows } from "../platform/db/rows.js";
import { type StoredVote, VoteBatcher, type VoteInput } from "./voteBatcher.js";

export type { StoredVote } from "./voteBatcher.js";

/** One batcher per database: every request of a process shares its groups. */
const batchers = new WeakMap<Db, VoteBatcher>();

/**
 * Inserts the vote unless this voter already voted on this pair; returns the stored vote either
 * way (the caller compares choices). Resolves once the vote's group has committed.
 */
export function recordVote(db: Db, v: VoteInput): Promise<StoredVote> {
  let batcher = batchers.get(db);
  if (!batcher) {
    batcher = new VoteBatcher(db);
    batchers.set(db, batcher);
  }
  return batcher.record(v);
}

/** Records that the voter is back (`last_seen_at`) and returns how many votes they have cast. */
export async function voterVoteCount(db: Db, voterId: string): Promise<number> {
  const [r] = await rows<{ c: number }>(
    db.orm,
    sql`update voters set last_seen_at = now() where id = ${voterId} returning votes_cast as c`,
  );
  return r?.c ?? 0;
}

export interface VoteSearch {
  voterId?: string | undefined;
  pairId?: string | undefined;
  experimentId?: string | undefined;
  promptSetId?: string | undefined;
  choice?: Choice | undefined;
  /** Case-insensitive substring of the prompt. */
  q?: string | undefined;
  since?: Date | undefined;
  /** Cursor: votes strictly older than this one (the last id of the previous page). */
  before?: string | undefined;
  limit: number;
}

export interface VoteRecord {
  voteId: string;
  pairId: string;
  voterId: string;
  choice: Choice;
  decisionMs: number | null;
  qcFlags: string[];
  createdAt: string;
  leftIs: "a" | "b" | null;
  experimentId: string | null;
  promptSetId: string | null;
  prompt: string;
  category: string | null;
  generationA: { id: string; adapterId: string | null; seed: string };
  generationB: { id: string; adapterId: string | null; seed: string };
}

/** Votes newest first, filtered; `nextBefore` pages on. */
export async function searchVotes(
  db: Db,
  s: VoteSearch,
): Promise<{ votes: VoteRecord[]; nextBefore: string | null }> {
  const where = [sql`true`];
  if (s.voterId) where.push(sql`v.voter_id = ${s.voterId}`);
  if (s.pairId) where.push(sql`v.pair_id = ${s.pairId}`);
  if (s.experimentId) where.push(sql`p.experiment_id = ${s.experimentId}`);
  if (s.promptSetId) where.push(sql`p.prompt_set_id = ${s.promptSetId}`);
  if (s.choice) where.push(sql`v.choice = ${s.choice}`);
  if (s.q) where.push(sql`pr.text ilike ${`%${s.q.replace(/[\\%_]/g, (m) => `\\${m}`)}%`}`);
  if (s.since) where.push(sql`v.created_at >= ${s.since.toISOString()}`);
  if (s.before) {
    where.push(sql`(v.created_at, v.id) < (select created_at, id from votes where id = ${s.before})`);
  }
  const found = await rows<{
    id: string;
    pair_id: string;
    voter_id: string;
    choice: Choice;
    decision_ms: number | null;
    qc_flags: string[];
    created_at: Date | string;
    left_is: "a" | "b" | null;
    experiment_id: string | null;
    prompt_set_id: string | null;
    text: string;
    category: string | null;
    ga_id: string;
    ga_adapter: string | null;
    ga_seed: string;
    gb_id: string;
    gb_adapter: string | null;
    gb_seed: string;
  }>(
    db.orm,
    sql`select v.id, v.pair_id, v.voter_id, v.choice, v.decision_ms, v.qc_flags, v.created_at,
          p.left_is, p.experiment_id, p.prompt_set_id, pr.text, pr.category,
          ga.id as ga_id, ga.adapter_id as ga_adapter, ga.seed as ga_seed,
          gb.id as gb_id, gb.adapter_id as gb_adapter, gb.seed as gb_seed
        from votes v
        join pairs p on p.id = v.pair_id
        join prompts pr on pr.id = p.prompt_id
        join generations ga on ga.id = p.generation_a_id
        join generations gb on gb.id = p.generation_b_id
        where ${sql.join(where, sql` and `)}
        order by v.created_at desc, v.id desc
        limit ${s.limit + 1}`,
  );
  const page = found.slice(0, s.limit);
  return {
    votes: page.map((r) => ({
      voteId: r.id,
      pairId: r.pair_id,
      voterId: r.voter_id,
      choice: r.choice,
      decisionMs: r.decision_ms,
      qcFlags: r.qc_flags,
      createdAt: new Date(r.created_at).toISOString(),
      leftIs: r.left_is,
      experimentId: r.experiment_id,
      promptSetId: r.prompt_set_id,
      prompt: r.text,
      category: r.category,
      generationA: { id: r.ga_id, adapterId: r.ga_adapter, seed: r.ga_seed },
      generationB: { id: r.gb_id, adapterId: r.gb_adapter, seed: r.gb_seed },
    })),
    nextBefore: found.length > s.limit ? (page[page.length - 1]?.id ?? null) : null,
  };
}
