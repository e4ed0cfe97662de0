import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { VoterFlag } from "../../functions/src/db/schema.js";
import { rows } from "../../functions/src/platform/db/rows.js";
import { refreshVoterQuality } from "../../functions/src/quality/refresh.js";
import { type Harness, openHarness } from "../api/votingHarness.js";
import { type TableVote, writeVoteTable } from "./voteTable.js";

/** A fixed, deterministic sequence in [0, 1). */
function lcg(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

interface VoterState {
  id: string;
  quality_flags: VoterFlag[];
  excluded: boolean;
  gold_votes: number;
  gold_correct: number;
  quality_checked_at: string | null;
}

describe.each(["pglite", "postgres"] as const)("refreshVoterQuality on %s", (db) => {
  let h: Harness;
  const state = async (id: string) =>
    (
      await rows<VoterState>(
        h.deps.db.orm,
        sql`select id, quality_flags, excluded, gold_votes, gold_correct, quality_checked_at::text from voters where id = ${id}`,
      )
    )[0] as VoterState;

  beforeAll(async () => {
    h = await openHarness(db);
    const rnd = lcg(7);
    const table: TableVote[] = [];
    // Honest voters: prefer adapter "good" over the base 80 % of the time, whichever side it is on.
    for (let v = 0; v < 6; v++)
      for (let i = 0; i < 30; i++) {
        const goodLeft = rnd() < 0.5;
        const pickGood = rnd() < 0.8;
        table.push({
          voter: `honest${v}`,
          left: goodLeft ? "good" : "base",
          right: goodLeft ? "base" : "good",
          choice: pickGood === goodLeft ? "left" : "right",
          decisionMs: 1500 + Math.floor(rnd() * 3000),
        });
        if (i % 5 === 0)
          table.push({
            voter: `honest${v}`,
            left: "base",
            right: "base",
            choice: "left",
            kind: "gold",
            goldClean: "left",
          });
      }
    // Always left, 30 votes.
    for (let i = 0; i < 30; i++) {
      const goodLeft = rnd() < 0.5;
      table.push({
        voter: "lefty",
        left: goodLeft ? "good" : "base",
        right: goodLeft ? "base" : "good",
        choice: "left",
      });
    }
    // Random clicker on 60 gold pairs (and nothing else).
    for (let i = 0; i < 60; i++) {
      const cleanLeft = rnd() < 0.5;
      table.push({
        voter: "clicker",
        left: "base",
        right: "base",
        choice: rnd() < 0.5 ? "left" : "right",
        kind: "gold",
        goldClean: cleanLeft ? "left" : "right",
      });
    }
    // A bot: decides in 100 ms, alternating sides.
    for (let i = 0; i < 20; i++)
      table.push({
        voter: "bot",
        left: "good",
        right: "base",
        choice: i % 2 ? "left" : "right",
        decisionMs: 100,
      });
    // Contrarian: always against the population's clear preference for "good".
    for (let i = 0; i < 40; i++) {
      const goodLeft = i % 2 === 0;
      table.push({
        voter: "contrarian",
        left: goodLeft ? "good" : "base",
        right: goodLeft ? "base" : "good",
        choice: goodLeft ? "right" : "left",
      });
    }
    await writeVoteTable(h.deps, table);
  });
  afterAll(async () => h?.close());

  it("flags each kind of bad voter with its reason and leaves honest voters alone", async () => {
    const result = await refreshVoterQuality(h.deps);
    expect(result.checked).toBe(10);
    expect(result.flagged).toBe(4);
    for (let v = 0; v < 6; v++) {
      const s = await state(`honest${v}`);
      expect(s.quality_flags).toEqual([]);
      expect(s.excluded).toBe(false);
      expect(s.gold_votes).toBe(6);
      expect(s.gold_correct).toBe(6);
      expect(s.quality_checked_at).not.toBeNull();
    }
    const codes = async (id: string) => (await state(id)).quality_flags.map((f) => f.code);
    expect(await codes("lefty")).toEqual(["one_side"]);
    expect(await codes("clicker")).toEqual(["gold_accuracy"]);
    expect(await codes("bot")).toEqual(["too_fast"]);
    expect(await codes("contrarian")).toEqual(["outlier"]);
    const lefty = await state("lefty");
    expect(lefty.excluded).toBe(true);
    expect(lefty.quality_flags[0]?.reason).toMatch(/left image in 100 % of 30/);
    expect(lefty.quality_flags[0]?.numbers?.leftShare).toBe(1);
    const clicker = await state("clicker");
    expect(clicker.gold_votes).toBe(60);
    expect(clicker.gold_correct).toBeLessThan(45);
  });

  it("checks at most maxVoters per call, never-checked voters first", async () => {
    await writeVoteTable(
      h.deps,
      [
        { voter: "new1", left: "good", right: "base", choice: "left" },
        { voter: "new2", left: "good", right: "base", choice: "right" },
        { voter: "honest1", left: "good", right: "base", choice: "left" },
      ],
      new Date(),
    );
    expect(await refreshVoterQuality(h.deps, { maxVoters: 2 })).toEqual({ checked: 2, flagged: 0 });
    expect((await state("new1")).quality_checked_at).not.toBeNull();
    expect((await state("new2")).quality_checked_at).not.toBeNull();
    expect(await refreshVoterQuality(h.deps, { maxVoters: 2 })).toEqual({ checked: 1, flagged: 0 });
  });

  it("checks only voters with new votes, and a person's override wins over the flags", async () => {
    expect(await refreshVoterQuality(h.deps)).toEqual({ checked: 0, flagged: 0 });
    await h.deps.db.orm.execute(sql`update voters set quality_override = 'include' where id = 'lefty'`);
    await h.deps.db.orm.execute(sql`update voters set quality_override = 'exclude' where id = 'honest0'`);
    await writeVoteTable(
      h.deps,
      [
        { voter: "lefty", left: "good", right: "base", choice: "left" },
        { voter: "honest0", left: "good", right: "base", choice: "left" },
      ],
      new Date(),
    );
    expect(await refreshVoterQuality(h.deps)).toEqual({ checked: 2, flagged: 1 });
    const lefty = await state("lefty");
    expect(lefty.quality_flags.map((f) => f.code)).toEqual(["one_side"]);
    expect(lefty.excluded).toBe(false);
    const honest = await state("honest0");
    expect(honest.quality_flags).toEqual([]);
    expect(honest.excluded).toBe(true);
  });
});
