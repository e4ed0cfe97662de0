import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../functions/src/app.js";
import { leaderboardService } from "../../functions/src/ranking/leaderboard.js";
import { type TableVote, writeVoteTable } from "../quality/voteTable.js";
import { type Harness, openHarness } from "./votingHarness.js";

// biome-ignore lint/suspicious/noExplicitAny: response bodies in tests are read loosely
type Json = Record<string, any>;

/** good beats base 80 % of the time, base beats weak 80 %, good beats weak 90 %; some ties and both-bad. */
function table(): TableVote[] {
  let s = 3;
  const rnd = () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
  const pairs: [string, string, number][] = [
    ["good", "base", 0.8],
    ["base", "weak", 0.8],
    ["good", "weak", 0.9],
  ];
  const rows: TableVote[] = [];
  for (let v = 0; v < 30; v++)
    for (let i = 0; i < 12; i++) {
      const [a, b, pa] = pairs[(v + i) % 3] as [string, string, number];
      const aLeft = rnd() < 0.5;
      const u = rnd();
      const aWins = rnd() < pa;
      const choice = u < 0.06 ? "both_bad" : u < 0.1 ? "tie" : aWins === aLeft ? "left" : "right";
      rows.push({
        voter: `voter${v}`,
        left: aLeft ? a : b,
        right: aLeft ? b : a,
        choice,
        category: i % 2 ? "Animals" : "Food",
      });
    }
  return rows;
}

describe.each(["pglite", "postgres"] as const)("GET /api/leaderboard on %s", (db) => {
  let h: Harness;
  let app: ReturnType<typeof createApp>;
  const usable = 30 * 12;
  beforeAll(async () => {
    h = await openHarness(db);
    await writeVoteTable(h.deps, [
      ...table(),
      // Not usable: a gold pair, a too-fast vote, and an excluded voter's votes (all for "weak").
      { voter: "voter0", left: "weak", right: "good", choice: "left", kind: "gold", goldClean: "right" },
      { voter: "voter1", left: "weak", right: "good", choice: "left", decisionMs: 120 },
      ...Array.from(
        { length: 20 },
        (): TableVote => ({ voter: "spammer", left: "weak", right: "good", choice: "left" }),
      ),
    ]);
    await h.deps.db.orm.execute(sql`update voters set excluded = true where id = 'spammer'`);
    app = createApp(h.deps);
  });
  afterAll(async () => h?.close());

  it("ranks the models from usable votes only, with intervals, counts and cache headers", async () => {
    const res = await app.request("/api/leaderboard");
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("public, max-age=60");
    const body = (await res.json()) as Json;
    expect(body.votes).toBe(usable);
    expect(body.voters).toBe(30);
    expect(body.rounds).toBeGreaterThanOrEqual(200);
    expect(body.categories).toEqual(["Animals", "Food"]);
    expect(body.models.map((m: Json) => m.model)).toEqual(["good", "base:tiny", "weak"]);
    expect(body.models.map((m: Json) => m.rank)).toEqual([1, 2, 3]);
    const [good, base, weak] = body.models as Json[];
    expect(good?.adapterId).toBe("good");
    expect(base?.adapterId).toBeNull();
    expect(base?.baseModelId).toBe("tiny");
    for (const m of body.models as Json[]) {
      expect(m.lower).toBeLessThan(m.rating);
      expect(m.upper).toBeGreaterThan(m.rating);
      expect(m.wins + m.losses + m.ties + m.bothBad).toBe(m.votes);
      expect(m.bothBadRate).toBeCloseTo(m.bothBad / m.votes, 12);
    }
    expect((good?.votes ?? 0) + (base?.votes ?? 0) + (weak?.votes ?? 0)).toBe(2 * usable);
    expect(good?.rating).toBeGreaterThan(base?.rating);
    expect(weak?.upper).toBeLessThan(good?.lower);
    expect(body.method).toMatch(/Bradley–Terry/);
  });

  it("filters by prompt category, and answers an unknown or empty category with the error shape", async () => {
    const animals = (await (await app.request("/api/leaderboard?category=Animals")).json()) as Json;
    expect(animals.category).toBe("Animals");
    expect(animals.votes).toBe(usable / 2);
    const unknown = await app.request("/api/leaderboard?category=Nope");
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as Json).error.code).toBe("unknown_category");
    const empty = await app.request("/api/leaderboard?category=");
    expect(empty.status).toBe(400);
    expect(((await empty.json()) as Json).error.code).toBe("invalid_request");
  });

  it("narrows the board to one base model's pairs", async () => {
    const tiny = (await (await app.request("/api/leaderboard?baseModel=tiny")).json()) as Json;
    expect(tiny.baseModelId).toBe("tiny");
    expect(tiny.votes).toBe(usable);
    const other = (await (
      await app.request("/api/leaderboard?baseModel=other&category=Food")
    ).json()) as Json;
    expect(other.error.code).toBe("unknown_category");
    const none = (await (await app.request("/api/leaderboard?baseModel=other")).json()) as Json;
    expect(none).toMatchObject({ baseModelId: "other", votes: 0, models: [], categories: [] });
  });

  it("is in /openapi.json", async () => {
    const spec = (await (await app.request("/openapi.json")).json()) as Json;
    expect(spec.paths["/api/leaderboard"]?.get).toBeDefined();
  });

  it("keeps a result for its time to live, then recomputes", async () => {
    let clock = 1_000_000;
    const service = leaderboardService(h.deps, { ttlMs: 60_000, rounds: 20, now: () => clock });
    const first = await service.get();
    await writeVoteTable(h.deps, [{ voter: "late", left: "good", right: "weak", choice: "left" }]);
    clock += 30_000;
    expect((await service.get()).votes).toBe(first.votes);
    clock += 31_000;
    expect((await service.get()).votes).toBe(first.votes + 1);
  });
});

describe("GET /api/leaderboard before any vote", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await openHarness("pglite");
  });
  afterAll(async () => h?.close());

  it("answers an empty leaderboard, not an error", async () => {
    const res = await createApp(h.deps).request("/api/leaderboard");
    expect(res.status).toBe(200);
    const body = (await res.json()) as Json;
    expect(body).toMatchObject({ votes: 0, voters: 0, models: [], categories: [] });
  });
});
