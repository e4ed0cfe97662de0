/**
 * A loop experiment (no prompt set of its own) gets experiment pairs on ordinary traffic: the
 * pool generates control vs challenger for it, voters are served them, and their votes reach the
 * experiment's statistics — the path from `startExperiment` to a decision, through the voting API.
 */
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../functions/src/app.js";
import { experiments, pairs } from "../../functions/src/db/schema.js";
import { evaluateExperiment } from "../../functions/src/experiments/decide.js";
import { startExperiment } from "../../functions/src/experiments/start.js";
import {
  Browser,
  type Harness,
  openHarness,
  runFakeGenerator,
  seedBaseModel,
  seedPromptSet,
} from "../api/votingHarness.js";
import { seedAdapters } from "./experimentVotes.js";

// biome-ignore lint/suspicious/noExplicitAny: response bodies in tests are read loosely
type Json = Record<string, any>;

describe("a loop experiment on live traffic", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await openHarness("pglite", {
      POOL_DEPTH: "6",
      GOLD_PAIR_RATE: "0",
      EXPERIMENT_TRAFFIC_SHARE: "0.9",
    });
  });
  afterAll(async () => h?.close());

  it("is served to voters and counts their votes", async () => {
    const baseModelId = await seedBaseModel(h.deps);
    await seedPromptSet(h.deps, "served", ["a red circle", "two blue squares", "a green triangle"]);
    await seedAdapters(h.deps, baseModelId, ["ad_champ", "ad_new"], "ad_champ");
    const e = await startExperiment(
      h.deps,
      {
        arms: [
          { name: "champion", adapterId: "ad_champ" },
          { name: "dpo:latent", adapterId: "ad_new" },
        ],
      },
      { origin: "loop", actor: "loop" },
    );
    const app = createApp(h.deps);
    const b = new Browser(app);
    await b.session();
    let experimentVotes = 0;
    for (let i = 0; i < 40 && experimentVotes < 5; i++) {
      const res = await b.request("/api/pairs/next");
      if (res.status !== 200) {
        await res.text();
        await runFakeGenerator(h.deps);
        continue;
      }
      const pair = (await res.json()) as Json;
      const voted = await b.post("/api/votes", { token: pair.voteToken, choice: "left", decisionMs: 1500 });
      expect(voted.status).toBe(201);
      const [row] = await h.deps.db.orm.select().from(pairs).where(eq(pairs.id, pair.pairId));
      if (row?.experimentId === e.id) {
        expect(row).toMatchObject({ kind: "experiment", armA: "champion", armB: "dpo:latent" });
        experimentVotes++;
      }
    }
    expect(experimentVotes).toBe(5);
    const [exp] = await h.deps.db.orm.select().from(experiments).where(eq(experiments.id, e.id));
    const ev = await evaluateExperiment(h.deps.db, h.deps.config, exp as NonNullable<typeof exp>);
    expect(ev.outcomes).toHaveLength(5);
  });
});
