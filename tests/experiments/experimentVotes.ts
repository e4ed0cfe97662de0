/**
 * Seeds experiment pairs and votes straight into the database, as the pool and the voting API
 * store them (arms on sides a/b, the side shown left, the choice), from simulated voters whose
 * chance of preferring the challenger is known: the statistics and the rule see ordinary rows.
 */
import { randomUUID } from "node:crypto";
import { adapters, generations, pairs, voters, votes } from "../../functions/src/db/schema.js";
import type { Deps } from "../../functions/src/deps.js";

/** A small seeded generator (mulberry32), so every run sees the same votes. */
export { seededRandom as seeded } from "../../functions/src/domain/stats/random.js";

export async function seedAdapters(
  deps: Deps,
  baseModelId: string,
  ids: string[],
  champion?: string,
): Promise<void> {
  await deps.db.orm.insert(adapters).values(
    ids.map((id) => ({
      id,
      baseModelId,
      blobPrefix: `adapters/${id}/`,
      status: id === champion ? ("champion" as const) : ("candidate" as const),
    })),
  );
}

export async function seedVoters(deps: Deps, n: number): Promise<string[]> {
  const ids = Array.from({ length: n }, () => `voter_${randomUUID()}`);
  await deps.db.orm.insert(voters).values(ids.map((id) => ({ id })));
  return ids;
}

export interface VoteSpec {
  challenger: string;
  /** P(the voter prefers the challenger) when the vote is not a tie. */
  pWin: number;
  /** Share of ties (default 0.1). */
  ties?: number;
  /** P(the challenger is shown on the left) (default ½: the server's fair coin). */
  pLeft?: number;
  /** Share of the arm's generations that failed (default 0). */
  failRate?: number;
  /** Latency of the arm's generations in ms (default 200). */
  latencyMs?: number;
}

/**
 * `n` voted experiment pairs: each draws a voter and a challenger (by `weights`), a side, and an
 * outcome. Control on side a, challenger on side b, as the pool plans them.
 */
export async function seedExperimentVotes(
  deps: Deps,
  opts: {
    experimentId: string;
    baseModelId: string;
    promptIds: string[];
    control: { name: string; adapterId: string | null };
    challengers: (VoteSpec & { adapterId: string | null })[];
    weights?: number[];
    voterIds: string[];
    n: number;
    random: () => number;
  },
): Promise<void> {
  const { random } = opts;
  const weights = opts.weights ?? opts.challengers.map(() => 1);
  const total = weights.reduce((s, w) => s + w, 0);
  const genRows: (typeof generations.$inferInsert)[] = [];
  const pairRows: (typeof pairs.$inferInsert)[] = [];
  const voteRows: (typeof votes.$inferInsert)[] = [];
  const t0 = Date.now() - opts.n * 1000;
  for (let i = 0; i < opts.n; i++) {
    let r = random() * total;
    let k = 0;
    while (k < weights.length - 1 && r >= (weights[k] as number)) r -= weights[k++] as number;
    const c = opts.challengers[k] as VoteSpec & { adapterId: string | null };
    const voterId = opts.voterIds[Math.floor(random() * opts.voterIds.length)] as string;
    const promptId = opts.promptIds[i % opts.promptIds.length] as string;
    const ids = { a: `gen_${randomUUID()}`, b: `gen_${randomUUID()}` };
    const failed = random() < (c.failRate ?? 0);
    for (const [side, adapterId, latency, fail] of [
      ["a", opts.control.adapterId, 200, false],
      ["b", c.adapterId, c.latencyMs ?? 200, failed],
    ] as const)
      genRows.push({
        id: ids[side],
        promptId,
        baseModelId: opts.baseModelId,
        adapterId,
        seed: String(i),
        sampler: "ddim",
        steps: 4,
        guidance: 5,
        width: 64,
        height: 64,
        status: fail ? "failed" : "succeeded",
        latencyMs: latency,
        blobKey: fail ? null : `x/${ids[side]}.png`,
      });
    const challengerOnLeft = random() < (c.pLeft ?? 0.5);
    const pairId = `pair_${randomUUID()}`;
    const at = new Date(t0 + i * 1000);
    pairRows.push({
      id: pairId,
      promptId,
      generationAId: ids.a,
      generationBId: ids.b,
      experimentId: opts.experimentId,
      kind: "experiment",
      armA: opts.control.name,
      armB: c.challenger,
      leftIs: challengerOnLeft ? "b" : "a",
      servedToVoterId: voterId,
      servedAt: at,
    });
    if (failed) continue; // a pair with a failed side is never served for a vote
    const u = random();
    const tie = u < (c.ties ?? 0.1);
    const challengerWins = random() < c.pWin;
    const choice = tie
      ? u < (c.ties ?? 0.1) / 2
        ? "tie"
        : "both_bad"
      : challengerWins === challengerOnLeft
        ? "left"
        : "right";
    voteRows.push({
      id: `vote_${randomUUID()}`,
      pairId,
      voterId,
      choice,
      decisionMs: 2000,
      idempotencyKey: `${pairId}:${voterId}`,
      createdAt: at,
    });
  }
  for (let i = 0; i < genRows.length; i += 1000)
    await deps.db.orm.insert(generations).values(genRows.slice(i, i + 1000));
  for (let i = 0; i < pairRows.length; i += 1000)
    await deps.db.orm.insert(pairs).values(pairRows.slice(i, i + 1000));
  for (let i = 0; i < voteRows.length; i += 1000)
    await deps.db.orm.insert(votes).values(voteRows.slice(i, i + 1000));
}
