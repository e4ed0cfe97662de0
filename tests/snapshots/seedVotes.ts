/**
 * Stored votes for snapshot and loop tests: ready pairs from the voting harness, served to
 * voters (left side chosen per vote) and voted on, written straight to the tables in batches.
 */
import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import { pairs, voters, votes } from "../../functions/src/db/schema.js";
import type { Deps } from "../../functions/src/deps.js";
import { seedReadyPairs } from "../api/votingHarness.js";

export interface SeededVote {
  voteId: string;
  pairId: string;
  voterId: string;
  choice: "left" | "right" | "tie" | "both_bad";
  leftIs: "a" | "b";
  flags: string[];
  createdAt: Date;
}

/** `plan[i]` is the vote on pair i; voters are reused round-robin from `voterCount`. */
export async function seedVotes(
  deps: Deps,
  plan: { choice: SeededVote["choice"]; leftIs?: "a" | "b"; flags?: string[]; gold?: boolean }[],
  opts: { voterCount?: number; start?: Date; stepMs?: number; images?: boolean } = {},
): Promise<SeededVote[]> {
  const { pairIds } = await seedReadyPairs(deps, plan.length, { images: opts.images });
  const voterIds = Array.from({ length: opts.voterCount ?? 3 }, () => `voter_${randomUUID()}`);
  await deps.db.orm
    .insert(voters)
    .values(voterIds.map((id) => ({ id })))
    .onConflictDoNothing();
  const step = opts.stepMs ?? 1000;
  const start = opts.start?.getTime() ?? Date.now() - plan.length * step - 60_000;
  const seeded: SeededVote[] = plan.map((p, i) => ({
    voteId: `vote_${randomUUID()}`,
    pairId: pairIds[i] as string,
    voterId: voterIds[i % voterIds.length] as string,
    choice: p.choice,
    leftIs: p.leftIs ?? "a",
    flags: p.flags ?? [],
    createdAt: new Date(start + i * step),
  }));
  for (const [i, v] of seeded.entries()) {
    const gold = plan[i]?.gold ?? false;
    await deps.db.orm.execute(
      sql`update ${pairs} set left_is = ${v.leftIs}, served_at = ${v.createdAt.toISOString()}::timestamptz,
          served_to_voter_id = ${v.voterId}, kind = ${gold ? "gold" : "data"}, is_gold = ${gold}
          where id = ${v.pairId}`,
    );
  }
  for (let i = 0; i < seeded.length; i += 1000) {
    await deps.db.orm.insert(votes).values(
      seeded.slice(i, i + 1000).map((v) => ({
        id: v.voteId,
        pairId: v.pairId,
        voterId: v.voterId,
        choice: v.choice,
        decisionMs: 1500,
        idempotencyKey: `${v.pairId}:${v.voterId}`,
        qcFlags: v.flags,
        createdAt: v.createdAt,
      })),
    );
  }
  return seeded;
}
