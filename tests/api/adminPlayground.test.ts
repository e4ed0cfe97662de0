/**
 * The playground API: one prompt and seed on two models through the generation queue; the jobs
 * carry the same prompt and seed and each side's adapter; polling answers 202 until both images
 * are there, then their signed URLs. Bad input gets the one error shape and writes nothing.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../functions/src/app.js";
import { generationJob } from "../../functions/src/contracts/jobs.js";
import { adapters } from "../../functions/src/db/schema.js";
import { rows } from "../../functions/src/platform/db/rows.js";
import { ADMIN_KEY, type Harness, openHarness, runFakeGenerator, seedBaseModel } from "./votingHarness.js";

// biome-ignore lint/suspicious/noExplicitAny: response bodies in tests are read loosely
type Json = Record<string, any>;

describe.each(["pglite", "postgres"] as const)("playground API on %s", (db) => {
  let h: Harness;
  let app: ReturnType<typeof createApp>;
  const admin = (path: string, init: RequestInit = {}) =>
    app.request(path, {
      ...init,
      headers: { "x-admin-key": ADMIN_KEY, "content-type": "application/json", ...(init.headers ?? {}) },
    });
  const generationsCount = async () =>
    (await rows<{ n: number }>(h.deps.db.orm, sql`select count(*)::int as n from generations`))[0]?.n;

  beforeAll(async () => {
    h = await openHarness(db);
    await seedBaseModel(h.deps);
    await h.deps.db.orm.insert(adapters).values({
      id: "ad_champion",
      baseModelId: "tiny",
      blobPrefix: "adapters/ad_champion/",
      objective: "dpo",
      space: "latent",
      status: "champion",
    });
    app = createApp(h.deps);
  });
  afterAll(async () => h?.close());

  it("renders one prompt and seed on the base and an adapter, side by side", async () => {
    const start = await admin("/api/admin/playground", {
      method: "POST",
      body: JSON.stringify({ prompt: "  a red circle  ", left: null, right: "ad_champion", seed: 1234 }),
    });
    expect(start.status).toBe(202);
    const run = (await start.json()) as Json;
    expect(run).toMatchObject({
      prompt: "a red circle",
      seed: 1234,
      baseModelId: "tiny",
      done: false,
      left: { adapterId: null, status: "queued", url: null },
      right: { adapterId: "ad_champion", status: "queued", url: null },
    });

    const jobs = await h.deps.queue.receive("generation", { max: 10, visibilityTimeoutSeconds: 1 });
    const payloads = jobs.map((d) => generationJob.parse(d.body).payload);
    expect(payloads.map((p) => [p.prompt, p.seed, p.adapterId, p.pairId]).sort()).toEqual(
      [
        ["a red circle", 1234, "ad_champion", null],
        ["a red circle", 1234, null, null],
      ].sort(),
    );
    // hand the jobs back at once, for the generator below
    await h.deps.db.orm.execute(
      sql`update jobs set status = 'queued', visible_at = now() where queue = 'generation'`,
    );

    const pending = await admin(`/api/admin/playground/${run.id}`);
    expect(pending.status).toBe(202);
    const notYet = await admin(`/api/admin/generations/gen_play_${run.id}_right/image`);
    expect(notYet.status).toBe(404);
    expect(((await notYet.json()) as Json).error.code).toBe("image_not_ready");
    expect(pending.headers.get("retry-after")).toBe("1");

    expect(await runFakeGenerator(h.deps)).toBe(2);
    const done = await admin(`/api/admin/playground/${run.id}`);
    expect(done.status).toBe(200);
    const body = (await done.json()) as Json;
    expect(body.done).toBe(true);
    for (const side of [body.left, body.right]) {
      expect(side.status).toBe("succeeded");
      const img = await app.request(new URL(side.url).pathname + new URL(side.url).search);
      expect(img.status).toBe(200);
      expect(img.headers.get("content-type")).toBe("image/png");
    }
    // any generation's image, by id, for the dashboard: a redirect to its signed URL
    const image = await admin(`/api/admin/generations/gen_play_${run.id}_left/image`);
    expect(image.status).toBe(302);
    const location = new URL(image.headers.get("location") ?? "");
    expect(location.pathname).toBe(new URL(body.left.url).pathname);
    const followed = await app.request(location.pathname + location.search);
    expect(followed.status).toBe(200);
    expect(followed.headers.get("content-type")).toBe("image/png");
    const unknown = await admin("/api/admin/generations/gen_nope/image");
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as Json).error.code).toBe("generation_not_found");
    expect((await app.request(`/api/admin/generations/gen_play_${run.id}_left/image`)).status).toBe(401);
    // the playground's prompt never joins a prompt set, so voters never see it
    const [p] = await rows<{ prompt_set_id: string | null; source: string }>(
      h.deps.db.orm,
      sql`select prompt_set_id, source from prompts where text = 'a red circle'`,
    );
    expect(p).toEqual({ prompt_set_id: null, source: "playground" });
  });

  it("refuses unknown adapters, empty prompts and bad seeds without writing anything", async () => {
    const before = await generationsCount();
    const cases: [Json, number, string][] = [
      [{ prompt: "x", left: "ad_nope", right: null }, 404, "adapter_not_found"],
      [{ prompt: "   ", left: null, right: null }, 400, "invalid_request"],
      [{ prompt: "x", left: null, right: null, seed: -1 }, 400, ""],
      [{ prompt: "x", left: null }, 400, ""],
    ];
    for (const [body, status, code] of cases) {
      const res = await admin("/api/admin/playground", { method: "POST", body: JSON.stringify(body) });
      expect(res.status).toBe(status);
      const e = ((await res.json()) as Json).error;
      expect(typeof e.message).toBe("string");
      if (code) expect(e.code).toBe(code);
    }
    expect(await generationsCount()).toBe(before);
    const missing = await admin("/api/admin/playground/00000000-0000-0000-0000-000000000000");
    expect(missing.status).toBe(404);
    expect((await admin("/api/admin/playground/..%2F..%2Fetc")).status).toBe(404);
    expect((await app.request("/api/admin/playground", { method: "POST", body: "{}" })).status).toBe(401);
  });
});
