/**
 * Demo voters vote through the public HTTP API (session cookie, next pair, both images, vote
 * with the CSRF header) and prefer by their pixel rule at the configured noise; they are marked
 * as demo voters in a way a client cannot forge.
 */
import { sql } from "drizzle-orm";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { votingLimiters } from "../../functions/src/api/voterSession.js";
import { createApp } from "../../functions/src/app.js";
import { createDemoVoter, demoVoters } from "../../functions/src/demo/demoVoters.js";
import { appTransport, SimulatedVoter } from "../../functions/src/demo/simulatedVoter.js";
import { degradeImage } from "../../functions/src/generator/degrade.js";
import { Browser, type Harness, openHarness, seedReadyPairs } from "../api/votingHarness.js";
import { seededRandom } from "../helpers/random.js";

const rowsOf = async <T>(h: Harness, q: ReturnType<typeof sql>) =>
  ((await h.deps.db.orm.execute(q)) as unknown as { rows: T[] }).rows;

/** A shape on a background: side a (k = 0) light, side b dark; the shape moves with i. */
const render = (i: number, k: number) => {
  const bg = k === 0 ? "#c8c8c8" : "#3c3c3c";
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32">
    <rect width="32" height="32" fill="${bg}"/><circle cx="${8 + (i % 16)}" cy="16" r="6" fill="hsl(${(i * 37) % 360},70%,50%)"/></svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
};

describe("demo voters", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await openHarness("pglite", { GOLD_PAIR_RATE: "0" });
    await seedReadyPairs(h.deps, 60, { promptSetName: "demo", render });
  });
  afterAll(async () => h?.close());

  it("vote through the HTTP API by their pixel rule at the configured noise, marked as demo voters", async () => {
    const app = createApp(h.deps);
    const noise = 0.2;
    const voters = await demoVoters(
      h.deps,
      appTransport(app),
      { voters: 3, preference: "brighter", noise },
      { random: seededRandom(5), sleep: async () => {} },
    );
    for (let i = 0; i < 20; i++) for (const v of voters) expect((await v.step()).kind).toBe("voted");
    const cast = voters.flatMap((v) => v.votes);
    expect(cast).toHaveLength(60);
    const stored = await rowsOf<{
      pair_id: string;
      choice: string;
      left_is: string;
      decision_ms: number;
      qc_flags: string[];
      is_demo: boolean;
    }>(
      h,
      sql`select v.pair_id, v.choice, p.left_is, v.decision_ms, v.qc_flags, vr.is_demo
          from votes v join pairs p on p.id = v.pair_id join voters vr on vr.id = v.voter_id`,
    );
    expect(stored).toHaveLength(60);
    const byPair = new Map(stored.map((s) => [s.pair_id, s]));
    let brighter = 0;
    for (const c of cast) {
      const s = byPair.get(c.pairId);
      expect(s?.choice).toBe(c.choice);
      expect(s?.is_demo).toBe(true);
      expect(s?.qc_flags).toEqual([]);
      expect(s?.decision_ms).toBe(c.decisionMs);
      expect(c.decisionMs).toBeGreaterThanOrEqual(1000);
      expect(c.decisionMs).toBeLessThanOrEqual(3000);
      // the rule read the pixels: the light image (side a) is where it points, wherever it was shown
      const lightSide = s?.left_is === "a" ? "left" : "right";
      expect(c.ruleChoice).toBe(lightSide);
      if (c.choice === lightSide) brighter++;
    }
    // the noise: a share `noise` of votes is a coin flip, so the rule wins 1 − noise/2 of them
    const p = 1 - noise / 2;
    expect(Math.abs(brighter - 60 * p)).toBeLessThanOrEqual(4.5 * Math.sqrt(60 * p * (1 - p)));
    expect(brighter).toBeLessThan(60); // some noise did show
  });

  it("pick the clean image of a gold pair like a person, whatever their rule says", async () => {
    // side a clean, side b the generator's degraded copy; the rule "brighter" alone would not care
    await seedReadyPairs(h.deps, 12, {
      promptSetName: "gold-like",
      render: async (i, k) => {
        const clean = await render(i, 1);
        return k === 0 ? clean : degradeImage(clean, "blur", `gen_${i}`);
      },
    });
    const app = createApp(h.deps);
    const [v] = await demoVoters(
      h.deps,
      appTransport(app),
      { voters: 1, preference: "brighter", noise: 0 },
      { random: seededRandom(8), sleep: async () => {} },
    );
    for (let i = 0; i < 12; i++) expect((await v?.step())?.kind).toBe("voted");
    const choices = await rowsOf<{ choice: string; left_is: string }>(
      h,
      sql`select v.choice, p.left_is from votes v join pairs p on p.id = v.pair_id
          join prompt_sets s on s.id = p.prompt_set_id where s.name = 'gold-like'`,
    );
    expect(choices).toHaveLength(12);
    for (const c of choices) expect(c.choice).toBe(c.left_is === "a" ? "left" : "right");
  });

  it("cannot be forged: only the server marks a voter as a demo voter", async () => {
    await seedReadyPairs(h.deps, 4, { promptSetName: "forge", render });
    const app = createApp(h.deps);
    const person = new Browser(app);
    await person.session();
    const forged = new Browser(app, { cookie: "prefloop_voter=v_demo_forged.bad-signature" });
    await forged.session();
    // voter rows are written with the first pair served
    for (const b of [person, forged]) expect((await b.request("/api/pairs/next")).status).toBe(200);
    const demo = await createDemoVoter(h.deps);
    const sim = new SimulatedVoter(appTransport(app), {
      rule: "darker",
      noise: 0,
      random: seededRandom(1),
      cookie: demo.cookie,
      sleep: async () => {},
    });
    await sim.session();
    const flags = await rowsOf<{ id: string; is_demo: boolean }>(
      h,
      sql`select id, is_demo from voters where id in (${person.cookie("prefloop_voter")?.split(".")[0]},
          ${forged.cookie("prefloop_voter")?.split(".")[0]}, ${demo.id}, 'v_demo_forged')`,
    );
    expect(Object.fromEntries(flags.map((f) => [f.id === demo.id ? "demo" : "other", f.is_demo]))).toEqual({
      demo: true,
      other: false,
    });
    expect(flags.some((f) => f.id === "v_demo_forged")).toBe(false);
  });

  it("waits as long as the server asks (429 Retry-After) instead of hammering it", async () => {
    await seedReadyPairs(h.deps, 3, { promptSetName: "slow", render });
    const config = h.deps.config;
    const limiters = votingLimiters({
      ...config,
      voting: { ...config.voting, rateLimits: { ...config.voting.rateLimits, voterPerMinute: 2 } },
    });
    const waits: number[] = [];
    const [v] = await demoVoters(
      h.deps,
      appTransport(createApp(h.deps, { voting: { limiters } })),
      { voters: 1, preference: "red", noise: 0 },
      { random: seededRandom(2), sleep: async (ms) => void waits.push(ms) },
    );
    expect((await v?.step())?.kind).toBe("voted"); // the burst: one pair and one vote
    const second = await v?.step();
    expect(second).toMatchObject({ kind: "waited", status: 429 });
    expect(second?.kind === "waited" && second.ms).toBeGreaterThanOrEqual(1000);
    expect(waits.at(-1)).toBe(second?.kind === "waited" ? second.ms : -1);
  });
});
