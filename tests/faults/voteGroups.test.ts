/**
 * Group commit of votes on the real PostgreSQL server: concurrent votes are written together,
 * yet each is stored exactly once, a repeat (same voter and pair) is never a second row, a bad
 * vote in a group fails only itself, and every voter's running count is right.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recordOneVote, VoteBatcher } from "../../functions/src/voting/voteBatcher.js";
import { type Harness, openHarness, seedReadyPairs } from "../api/votingHarness.js";

const rowsOf = async <T>(h: Harness, q: ReturnType<typeof sql>) =>
  ((await h.deps.db.orm.execute(q)) as unknown as { rows: T[] }).rows;

describe("vote groups on PostgreSQL", () => {
  let h: Harness;
  let pairIds: string[];
  const voters = ["gv_a", "gv_b", "gv_c", "gv_d"];
  beforeAll(async () => {
    h = await openHarness("postgres");
    ({ pairIds } = await seedReadyPairs(h.deps, 60, { images: false }));
    for (const v of voters) await h.deps.db.orm.execute(sql`insert into voters (id) values (${v})`);
  });
  afterAll(async () => h?.close());

  it("stores 240 concurrent votes once each, with repeats answered as duplicates and right counts", async () => {
    const batcher = new VoteBatcher(h.deps.db, { maxInFlight: 2, maxGroup: 50 });
    const votes = pairIds.flatMap((pairId, i) =>
      voters.map((voterId, k) => ({
        pairId,
        voterId,
        choice: (["left", "right", "tie", "both_bad"] as const)[(i + k) % 4] ?? "left",
        decisionMs: 800 + i,
      })),
    );
    // Every vote sent twice at once, as a client that retries before the first answer arrives.
    const results = await Promise.all([...votes, ...votes].map((v) => batcher.record(v)));
    const firsts = results.slice(0, votes.length);
    const repeats = results.slice(votes.length);
    const inserted = results.filter((r) => r.inserted).length;
    expect(inserted).toBe(votes.length);
    for (const [i, v] of votes.entries()) {
      const a = firsts[i];
      const b = repeats[i];
      expect(a?.voteId).toBe(b?.voteId);
      expect(a?.choice).toBe(v.choice);
      expect(b?.choice).toBe(v.choice);
      expect([a?.inserted, b?.inserted].filter(Boolean)).toHaveLength(1);
    }
    const [stored] = await rowsOf<{ n: number; distinct_keys: number }>(
      h,
      sql`select count(*)::int as n, count(distinct (pair_id, voter_id))::int as distinct_keys from votes`,
    );
    expect(stored).toEqual({ n: votes.length, distinct_keys: votes.length });
    // The last count each voter saw is their total; no count exceeds it.
    for (const voterId of voters) {
      const seen = results
        .filter((_, i) => (i < votes.length ? votes[i] : votes[i - votes.length])?.voterId === voterId)
        .map((r) => r.voterVotes);
      expect(Math.max(...seen)).toBe(pairIds.length);
      expect(Math.min(...seen)).toBeGreaterThanOrEqual(1);
    }
    const one = await recordOneVote(h.deps.db, { ...(votes[0] as (typeof votes)[number]) });
    expect(one).toMatchObject({ inserted: false, voterVotes: pairIds.length, voteId: firsts[0]?.voteId });
  });

  it("a vote on a pair that does not exist fails alone; the rest of its group is stored", async () => {
    await h.deps.db.orm.execute(sql`insert into voters (id) values ('gv_e')`);
    const batcher = new VoteBatcher(h.deps.db, { maxInFlight: 1, maxGroup: 50 });
    const good = pairIds.slice(0, 10).map((pairId) => ({
      pairId,
      voterId: "gv_e",
      choice: "left" as const,
      decisionMs: 900,
    }));
    const outcomes = await Promise.allSettled([
      batcher.record(good[0] as (typeof good)[number]), // written alone: the rest queue behind it
      ...good.slice(1, 5).map((v) => batcher.record(v)),
      batcher.record({ pairId: "pair_missing", voterId: "gv_e", choice: "left", decisionMs: 900 }),
      batcher.record({
        pairId: pairIds[0] as string,
        voterId: "gv_unknown",
        choice: "left",
        decisionMs: 900,
      }),
      ...good.slice(5).map((v) => batcher.record(v)),
    ]);
    const failed = outcomes.flatMap((o, i) => (o.status === "rejected" ? [i] : []));
    expect(failed).toEqual([5, 6]);
    for (const o of outcomes.filter((x) => x.status === "rejected")) {
      expect((o as PromiseRejectedResult).reason).toBeDefined();
    }
    const [n] = await rowsOf<{ n: number }>(
      h,
      sql`select count(*)::int as n from votes where voter_id = 'gv_e'`,
    );
    expect(n?.n).toBe(10);
  });

  it("every voter's votes_cast equals their stored votes, whichever statement wrote or removed them", async () => {
    // concurrent groups that share voters (the trigger takes voter rows in id order: no deadlock)
    await h.deps.db.orm.execute(sql`insert into voters (id) values ('gv_f'), ('gv_g')`);
    const batcher = new VoteBatcher(h.deps.db, { maxInFlight: 4, maxGroup: 7 });
    await Promise.all(
      pairIds
        .slice(10, 50)
        .flatMap((pairId, i) =>
          ["gv_g", "gv_f"].map((voterId) =>
            batcher.record({ pairId, voterId, choice: i % 2 ? "left" : "right", decisionMs: 700 }),
          ),
        ),
    );
    // a statement outside the vote path: an import of two votes, then a deletion of one
    await h.deps.db.orm.execute(sql`insert into votes (id, pair_id, voter_id, choice, idempotency_key)
      values ('vote_imp1', ${pairIds[55]}, 'gv_f', 'tie', ${`${pairIds[55]}:gv_f`}),
             ('vote_imp2', ${pairIds[56]}, 'gv_f', 'left', ${`${pairIds[56]}:gv_f`})`);
    await h.deps.db.orm.execute(sql`delete from votes where id = 'vote_imp1'`);
    const counts = await rowsOf<{ id: string; votes_cast: number; stored: number }>(
      h,
      sql`select v.id, v.votes_cast, (select count(*)::int from votes where voter_id = v.id) as stored
          from voters v order by v.id`,
    );
    expect(counts.length).toBeGreaterThanOrEqual(6);
    for (const c of counts) expect(c.votes_cast, c.id).toBe(c.stored);
    expect(counts.find((c) => c.id === "gv_f")?.stored).toBe(41);
    const next = await batcher.record({
      pairId: pairIds[57] as string,
      voterId: "gv_f",
      choice: "left",
      decisionMs: 700,
    });
    expect(next.voterVotes).toBe(42);
  });
});
