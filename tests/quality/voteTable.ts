/**
 * Writes a table of votes straight into the database (voters, adapters, prompts, generations,
 * pairs, votes), for the tests of services that read votes: rater quality and the leaderboard.
 */
import { randomUUID } from "node:crypto";
import { adapters, generations, pairs, prompts, voters, votes } from "../../functions/src/db/schema.js";
import type { Deps } from "../../functions/src/deps.js";
import { seedBaseModel } from "../api/votingHarness.js";

export interface TableVote {
  voter: string;
  /** Models shown left and right: an adapter id, or "base" for the base model alone. */
  left: string;
  right: string;
  choice: "left" | "right" | "tie" | "both_bad";
  kind?: "data" | "experiment" | "gold" | "prompt";
  /** Gold pairs: the side of the clean image. */
  goldClean?: "left" | "right";
  decisionMs?: number | null;
  category?: string;
}

/** Inserts the votes in order (created one millisecond apart, from `start`); returns the base model id. */
export async function writeVoteTable(
  deps: Deps,
  table: TableVote[],
  start = new Date(Date.now() - 3_600_000),
): Promise<string> {
  const baseModelId = await seedBaseModel(deps);
  const orm = deps.db.orm;
  const adapterIds = [...new Set(table.flatMap((v) => [v.left, v.right]).filter((m) => m !== "base"))];
  if (adapterIds.length > 0)
    await orm
      .insert(adapters)
      .values(adapterIds.map((id) => ({ id, baseModelId, blobPrefix: `adapters/${id}/` })))
      .onConflictDoNothing();
  const voterIds = [...new Set(table.map((v) => v.voter))];
  await orm
    .insert(voters)
    .values(voterIds.map((id) => ({ id })))
    .onConflictDoNothing();
  const promptIds = new Map<string, string>();
  for (const category of new Set(table.map((v) => v.category ?? "Test"))) {
    const id = `pr_${randomUUID()}`;
    promptIds.set(category, id);
    await orm
      .insert(prompts)
      .values({ id, text: `a prompt about ${category} ${id}`, category, source: "test" });
  }
  const genRows: (typeof generations.$inferInsert)[] = [];
  const pairRows: (typeof pairs.$inferInsert)[] = [];
  const voteRows: (typeof votes.$inferInsert)[] = [];
  table.forEach((v, i) => {
    const promptId = promptIds.get(v.category ?? "Test") as string;
    const leftIs = i % 2 === 0 ? "a" : "b";
    const [modelA, modelB] = leftIs === "a" ? [v.left, v.right] : [v.right, v.left];
    const ids = [`gen_${randomUUID()}`, `gen_${randomUUID()}`] as const;
    [modelA, modelB].forEach((m, k) => {
      genRows.push({
        id: ids[k] as string,
        promptId,
        baseModelId,
        adapterId: m === "base" ? null : m,
        seed: String(i),
        sampler: "ddim",
        steps: 4,
        guidance: 5,
        width: 64,
        height: 64,
        status: "succeeded",
        blobKey: `x/${ids[k]}.png`,
      });
    });
    const pairId = `pair_${randomUUID()}`;
    const gold = v.kind === "gold";
    const goldAnswer = gold
      ? (v.goldClean ?? "left") === "left"
        ? leftIs
        : leftIs === "a"
          ? "b"
          : "a"
      : null;
    pairRows.push({
      id: pairId,
      promptId,
      generationAId: ids[0],
      generationBId: ids[1],
      leftIs,
      servedToVoterId: v.voter,
      servedAt: new Date(start.getTime() + i),
      kind: v.kind ?? "data",
      isGold: gold,
      goldAnswer,
    });
    const decisionMs = v.decisionMs === undefined ? 2000 : v.decisionMs;
    voteRows.push({
      id: `vote_${randomUUID()}`,
      pairId,
      voterId: v.voter,
      choice: v.choice,
      decisionMs,
      idempotencyKey: randomUUID(),
      qcFlags: decisionMs === null ? ["no_decision_time"] : decisionMs < 400 ? ["too_fast"] : [],
      createdAt: new Date(start.getTime() + i),
    });
  });
  for (let i = 0; i < genRows.length; i += 1000)
    await orm.insert(generations).values(genRows.slice(i, i + 1000));
  for (let i = 0; i < pairRows.length; i += 1000) await orm.insert(pairs).values(pairRows.slice(i, i + 1000));
  for (let i = 0; i < voteRows.length; i += 1000) await orm.insert(votes).values(voteRows.slice(i, i + 1000));
  return baseModelId;
}
