/**
 * The admin routes of snapshots, training runs, adapters and the loop through the app (PGlite,
 * filesystem blobs): the admin guard, the one error shape, status codes, signed downloads, and
 * every route in /openapi.json.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../functions/src/app.js";
import { repoRoot } from "../../functions/src/config.js";
import { baseModels } from "../../functions/src/db/schema.js";
import { blobUri } from "../../functions/src/platform/blob/uri.js";
import { registerTrainingResult } from "../../functions/src/training/registerAdapter.js";
import { ADMIN_KEY, type Harness, openHarness } from "../api/votingHarness.js";
import { seedVotes } from "../snapshots/seedVotes.js";

const micro = join(repoRoot, "tests/fixtures/inference/micro-sd");

describe("admin routes: snapshots, training runs, adapters, loop", () => {
  let h: Harness;
  let app: ReturnType<typeof createApp>;
  const call = async (method: string, path: string, body?: unknown, key: string | null = ADMIN_KEY) => {
    const headers: Record<string, string> = {};
    if (key) headers["x-admin-key"] = key;
    if (body !== undefined) headers["content-type"] = "application/json";
    const res = await app.request(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return {
      status: res.status,
      body: (await res.json()) as Record<string, unknown> & { error?: { code: string; message: string } },
    };
  };

  beforeAll(async () => {
    h = await openHarness("pglite");
    app = createApp(h.deps);
    await seedVotes(h.deps, [{ choice: "left" }, { choice: "right" }, { choice: "tie" }]);
    await h.deps.db.orm.insert(baseModels).values({
      id: "micro",
      name: "micro",
      family: "stable-diffusion",
      sha256: "c".repeat(64),
      onnxUri: join(micro, "onnx"),
      width: 16,
      height: 16,
    });
    const weights = new Uint8Array(readFileSync(join(micro, "adapter_a/pytorch_lora_weights.safetensors")));
    for (const id of ["ad-a", "ad-b"]) {
      await h.deps.blobs.put(`adapters/${id}/pytorch_lora_weights.safetensors`, weights);
      await h.deps.blobs.put(
        `adapters/${id}/manifest.json`,
        new TextEncoder().encode(
          JSON.stringify({
            baseModelId: "micro",
            baseModelSha256: "c".repeat(64),
            rank: 4,
            alpha: 8,
            objective: "dpo",
          }),
        ),
      );
      const out = await registerTrainingResult(h.deps, {
        version: 1,
        id: `${id}.result`,
        createdAt: new Date().toISOString(),
        type: "training_result",
        payload: {
          trainingJobId: `job-${id}`,
          adapterId: id,
          status: "succeeded",
          adapterUri: blobUri(h.deps.config.blob, `adapters/${id}/`),
          metrics: {},
          error: null,
        },
      });
      expect(out.outcome).toBe("registered");
    }
  }, 120_000);
  afterAll(async () => {
    await h?.close();
  });

  it("keeps every route behind the admin key", async () => {
    for (const path of [
      "/api/admin/snapshots",
      "/api/admin/training-runs",
      "/api/admin/adapters",
      "/api/admin/loop",
    ]) {
      const r = await call("GET", path, undefined, null);
      expect(r.status).toBe(401);
      expect(r.body.error?.code).toBe("unauthorized");
    }
  });

  it("exports a snapshot, finds it again, lists it and signs its files", async () => {
    const created = await call("POST", "/api/admin/snapshots");
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body).toMatchObject({ rowCount: 3, counts: { rows: 3, ties: 1, wins: 2 } });
    const again = await call("POST", "/api/admin/snapshots", { cutoff: created.body.cutoff });
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(created.body.id);
    const list = await call("GET", "/api/admin/snapshots");
    expect((list.body.snapshots as { id: string }[]).map((s) => s.id)).toContain(created.body.id);
    expect((await call("GET", `/api/admin/snapshots/${created.body.id}`)).body.id).toBe(created.body.id);
    const file = await call("GET", `/api/admin/snapshots/${created.body.id}/files/train`);
    expect(file.status).toBe(200);
    const url = new URL(String(file.body.url));
    const download = await app.request(`${url.pathname}${url.search}`);
    expect(download.status).toBe(200);
    const bytes = new Uint8Array(await download.arrayBuffer());
    expect(createHash("sha256").update(bytes).digest("hex")).toBe(file.body.sha256);
  });

  it.each([
    [
      "a cut-off in the future",
      { cutoff: new Date(Date.now() + 86_400_000).toISOString() },
      400,
      "cutoff_in_future",
    ],
    ["a window without votes", { cutoff: "2020-01-01T00:00:00Z" }, 409, "no_usable_votes"],
    [
      "since after the cut-off",
      { cutoff: "2020-01-01T00:00:00Z", since: "2021-01-01T00:00:00Z" },
      400,
      "empty_window",
    ],
    ["a field it does not know", { cutof: "2020-01-01T00:00:00Z" }, 400, null],
  ])("answers %s with the one error shape", async (_what, body, status, code) => {
    const r = await call("POST", "/api/admin/snapshots", body);
    expect(r.status).toBe(status);
    expect(typeof r.body.error?.message).toBe("string");
    if (code) expect(r.body.error?.code).toBe(code);
  });

  it("answers 404 for unknown snapshots, runs, adapters and rounds", async () => {
    for (const path of [
      "/api/admin/snapshots/nope",
      "/api/admin/snapshots/nope/files/train",
      "/api/admin/training-runs/nope",
      "/api/admin/adapters/nope",
      "/api/admin/loop/rounds/nope",
    ]) {
      const r = await call("GET", path);
      expect(r.status, path).toBe(404);
      expect(r.body.error?.code).toMatch(/_not_found$/);
    }
    expect((await call("POST", "/api/admin/adapters/nope/promote", {})).status).toBe(404);
  });

  it("lists, shows, validates, promotes and retires adapters", async () => {
    const list = await call("GET", "/api/admin/adapters?baseModelId=micro&status=candidate");
    expect((list.body.adapters as { id: string }[]).map((a) => a.id).sort()).toEqual(["ad-a", "ad-b"]);
    const show = await call("GET", "/api/admin/adapters/ad-a");
    expect(show.body).toMatchObject({
      id: "ad-a",
      lineage: { chain: [{ adapterId: "ad-a" }], complete: true, baseModelId: "micro" },
      manifest: { baseModelSha256: "c".repeat(64) },
    });
    const files = await call("GET", "/api/admin/adapters/ad-a/files");
    expect((files.body.files as { name: string }[]).map((f) => f.name).sort()).toEqual([
      "manifest.json",
      "pytorch_lora_weights.safetensors",
    ]);
    expect((await call("POST", "/api/admin/adapters/ad-a/validate")).body).toEqual({
      ok: true,
      reason: null,
    });

    expect((await call("POST", "/api/admin/adapters/ad-a/promote", { reason: "best" })).body).toMatchObject({
      changed: true,
      previousChampionId: null,
      adapter: { status: "champion" },
    });
    expect((await call("POST", "/api/admin/adapters/ad-b/promote")).body).toMatchObject({
      changed: true,
      previousChampionId: "ad-a",
    });
    expect((await call("GET", "/api/admin/adapters/ad-a")).body.status).toBe("retired");

    // An adapter whose stored weights were damaged is not promoted.
    await h.deps.blobs.put("adapters/ad-a/pytorch_lora_weights.safetensors", new Uint8Array([0, 1, 2]));
    const bad = await call("POST", "/api/admin/adapters/ad-a/promote");
    expect(bad.status).toBe(409);
    expect(bad.body.error?.code).toBe("adapter_invalid");
    expect((await call("POST", "/api/admin/adapters/ad-b/retire")).body).toMatchObject({
      changed: true,
      adapter: { status: "retired" },
    });
  });

  it("shows the loop and runs a tick on demand", async () => {
    const loop = await call("GET", "/api/admin/loop");
    expect(loop.body).toMatchObject({ settings: { enabled: true, minVotes: 200 }, rounds: [] });
    const tick = await call("POST", "/api/admin/loop/tick");
    expect(tick.status).toBe(200);
    expect(Object.keys(tick.body.steps as object)).toEqual(
      expect.arrayContaining(["refreshVoterQuality", "settleTrainingRounds", "maybeStartRounds"]),
    );
    expect((await call("GET", "/api/admin/training-runs")).body).toEqual({ runs: [] });
  });

  it("documents every route in /openapi.json", async () => {
    const res = await app.request("/openapi.json");
    const doc = (await res.json()) as { paths: Record<string, object> };
    for (const path of [
      "/api/admin/snapshots",
      "/api/admin/snapshots/{id}",
      "/api/admin/snapshots/{id}/files/{split}",
      "/api/admin/training-runs",
      "/api/admin/training-runs/{id}",
      "/api/admin/adapters",
      "/api/admin/adapters/{id}",
      "/api/admin/adapters/{id}/files",
      "/api/admin/adapters/{id}/validate",
      "/api/admin/adapters/{id}/promote",
      "/api/admin/adapters/{id}/retire",
      "/api/admin/loop",
      "/api/admin/loop/rounds/{id}",
      "/api/admin/loop/tick",
    ])
      expect(doc.paths[path], path).toBeDefined();
  });
});
