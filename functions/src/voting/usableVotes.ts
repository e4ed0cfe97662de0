/**
 * Which stored votes count. Every vote stays stored; snapshots, rankings and experiments read
 * only the usable ones, and this file is the one definition of "usable" they all share.
 *
 * A vote is usable when
 * - its pair is not a gold pair (those measure the voter, not the models),
 * - it carries no excluding QC flag (`too_fast`: decided faster than a judgement takes), and
 * - its voter is not excluded (rater-quality flags, or a person's word, set `voters.excluded`).
 *
 * `no_decision_time` (a client that sends no decision time) is recorded but does not exclude.
 */
import { type SQL, sql } from "drizzle-orm";

/** Vote QC flags that leave the vote out of every use. */
export const EXCLUDING_VOTE_FLAGS = ["too_fast"] as const;

/**
 * A SQL condition over aliases `v` (votes), `p` (pairs) and `vr` (voters) that holds for usable
 * votes: `from votes v join pairs p on p.id = v.pair_id join voters vr on vr.id = v.voter_id`.
 */
export function usableVoteCondition(): SQL {
  return sql.raw(
    `(p.kind <> 'gold' and not p.is_gold and not vr.excluded and not (v.qc_flags ?| array[${EXCLUDING_VOTE_FLAGS.map((f) => `'${f}'`).join(", ")}]))`,
  );
}

/** Why a vote is not usable (null when it is), for snapshot counts and admin views. */
export function exclusionReason(v: {
  pairKind: string;
  isGold: boolean;
  voterExcluded: boolean;
  qcFlags: readonly string[];
}): "gold_pair" | "voter_excluded" | "too_fast" | null {
  if (v.pairKind === "gold" || v.isGold) return "gold_pair";
  if (v.voterExcluded) return "voter_excluded";
  if (v.qcFlags.some((f) => (EXCLUDING_VOTE_FLAGS as readonly string[]).includes(f))) return "too_fast";
  return null;
}
