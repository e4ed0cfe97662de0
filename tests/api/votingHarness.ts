/**
 * Test harness for the voting API: builds deps on PGlite or a throwaway PostgreSQL database,
 * seeds base models, prompt sets and ready pairs (PNG images rendered with sharp), plays the
 * generator's side of the generation-job contract, and keeps a voter's cookies like a browser.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import type { Hono } from "hono";
import sharp from "sharp";
import { loadConfig } from "../../functions/src/config.js";
import { generationJob } from "../../functions/src/contracts/jobs.js";
import { baseModels, generations, pairs, promptSets, prompts } from "../../functions/src/db/schema.js";
import { buildDeps, type Deps } from "../../functions/src/deps.js";
import { jsonLogger } from "../../functions/src/platform/log.js";
import { throwawayDatabase } from "../helpers/postgres.js";

export const ADMIN_KEY = "admin-key-for-tests-0123456789abcdef";

export interface Harness {
  deps: Deps;
  close(): Promise<void>;
}

export async function openHarness(
  db: "pglite" | "postgres",
  env: Record<string, string> = {},
): Promise<Harness> {
  const state = mkdtempSync(join(tmpdir(), "prefloop-voting-"));
  const pg = db === "postgres" ? await throwawayDatabase() : null;
  const config = loadConfig({
    PREFLOOP_ENV: "test",
    STATE_DIR: state,
    ADMIN_API_KEY: ADMIN_KEY,
    WEB_DIST_DIR: join(state, "no-web"),
    ...(pg ? { DATABASE_URL: pg.url } : {}),
    ...env,
  });
  const deps = await buildDeps(config, { log: jsonLogger("error") });
  return {
    deps,
    close: async () => {
      await deps.close();
      // pg.Pool.end() resolves before its sockets finish closing; a forced drop right away would
      // terminate them and surface as an uncaught "terminating connection" error.
      if (pg) await new Promise((r) => setTimeout(r, 250));
      await pg?.drop();
      rmSync(state, { recursive: true, force: true });
    },
  };
}

/** A small PNG: two halves in different colours, so left and right images differ visibly. */
export async function renderPng(seed: number, size = 64): Promise<Buffer> {
  const hue = (seed * 47) % 360;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}">
    <rect width="${size}" height="${size}" fill="hsl(${hue},60%,55%)"/>
    <circle cx="${size / 2}" cy="${size / 2}" r="${size / 4 + (seed % 5)}" fill="hsl(${(hue + 180) % 360},70%,45%)"/>
  </svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

export async function seedBaseModel(deps: Deps, id = "tiny"): Promise<string> {
  await deps.db.orm
    .insert(baseModels)
    .values({ id, name: "tiny shapes model", family: "tiny", sha256: "0".repeat(64), width: 64, height: 64 })
    .onConflictDoNothing();
  return id;
}

export async function seedPromptSet(
  deps: Deps,
  name: string,
  texts: string[],
): Promise<{ id: string; promptIds: string[] }> {
  const id = `ps_${randomUUID()}`;
  await deps.db.orm.insert(promptSets).values({ id, name, source: "test" });
  const promptIds = texts.map(() => `pr_${randomUUID()}`);
  await deps.db.orm.insert(prompts).values(
    texts.map((text, i) => ({
      id: promptIds[i] as string,
      promptSetId: id,
      text,
      category: "Test",
      source: "test",
    })),
  );
  return { id, promptIds };
}

export interface SeedPairOptions {
  promptSetName?: string;
  experimentId?: string | null;
  /** Write the images (default) or only the rows. */
  images?: boolean;
  /** The image of pair `i`, side `k` (0 = a); default: `renderPng`. */
  render?: (i: number, k: number) => Promise<Buffer>;
  kind?: "data" | "experiment" | "gold";
  /** Experiment pairs: the arm names and adapters of sides a and b. */
  arms?: [string, string];
  adapters?: [string | null, string | null];
  /** Gold pairs: the clean side. */
  goldAnswer?: "a" | "b";
}

/** `n` ready pairs (both generations succeeded, images in the blob store) in a prompt set. */
export async function seedReadyPairs(
  deps: Deps,
  n: number,
  opts: SeedPairOptions = {},
): Promise<{ promptSetId: string; pairIds: string[] }> {
  const baseModelId = await seedBaseModel(deps);
  const set = await seedPromptSet(
    deps,
    opts.promptSetName ?? `set-${randomUUID().slice(0, 8)}`,
    Array.from({ length: n }, (_, i) => `test prompt number ${i}`),
  );
  const pairIds: string[] = [];
  const genRows: (typeof generations.$inferInsert)[] = [];
  const pairRows: (typeof pairs.$inferInsert)[] = [];
  for (let i = 0; i < n; i++) {
    const pairId = `pair_${randomUUID()}`;
    const ids = [`gen_${randomUUID()}`, `gen_${randomUUID()}`] as const;
    for (const [k, gid] of ids.entries()) {
      const key = `test-images/${gid}.png`;
      if (opts.images !== false) {
        const png = opts.render ? await opts.render(i, k) : await renderPng(i * 2 + k);
        await deps.blobs.put(key, png, { contentType: "image/png" });
      }
      genRows.push({
        id: gid,
        promptId: set.promptIds[i] as string,
        baseModelId,
        adapterId: opts.adapters?.[k] ?? null,
        seed: String(1000 + i),
        sampler: "ddim",
        steps: 4,
        guidance: 5,
        width: 64,
        height: 64,
        status: "succeeded",
        blobKey: key,
      });
    }
    pairRows.push({
      id: pairId,
      promptId: set.promptIds[i] as string,
      generationAId: ids[0],
      generationBId: ids[1],
      experimentId: opts.experimentId ?? null,
      promptSetId: set.id,
      kind: opts.kind ?? (opts.experimentId ? "experiment" : "data"),
      armA: opts.arms?.[0] ?? null,
      armB: opts.arms?.[1] ?? null,
      isGold: opts.kind === "gold",
      goldAnswer: opts.kind === "gold" ? (opts.goldAnswer ?? "a") : null,
    });
    pairIds.push(pairId);
  }
  for (let i = 0; i < genRows.length; i += 1000)
    await deps.db.orm.insert(generations).values(genRows.slice(i, i + 1000));
  for (let i = 0; i < pairRows.length; i += 1000)
    await deps.db.orm.insert(pairs).values(pairRows.slice(i, i + 1000));
  return { promptSetId: set.id, pairIds };
}

/**
 * Plays the generator: takes queued generation jobs, checks them against the contract, renders
 * an image into the blob store and marks the generation succeeded (or failed when `fail` says so).
 */
export async function runFakeGenerator(
  deps: Deps,
  opts: { fail?: (generationId: string) => boolean } = {},
): Promise<number> {
  let done = 0;
  for (;;) {
    const batch = await deps.queue.receive("generation", { max: 50, visibilityTimeoutSeconds: 60 });
    if (batch.length === 0) return done;
    for (const d of batch) {
      const job = generationJob.parse(d.body);
      const p = job.payload;
      if (opts.fail?.(p.generationId)) {
        await deps.db.orm.execute(
          sql`update generations set status = 'failed', error = 'test failure' where id = ${p.generationId}`,
        );
      } else {
        const key = `generations/${p.generationId}.png`;
        await deps.blobs.put(key, await renderPng(p.seed % 1000), { contentType: "image/png" });
        await deps.db.orm.execute(
          sql`update generations set status = 'succeeded', blob_key = ${key}, finished_at = now() where id = ${p.generationId}`,
        );
      }
      await deps.queue.ack("generation", d);
      done++;
    }
  }
}

/** A browser-like client of an app: keeps cookies, sends the CSRF header on POSTs. */
export class Browser {
  private cookies = new Map<string, string>();
  csrf: string | null = null;

  constructor(
    private readonly app: Hono,
    private readonly headers: Record<string, string> = {},
  ) {}

  async request(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    for (const [k, v] of Object.entries(this.headers)) if (!headers.has(k)) headers.set(k, v);
    if (this.cookies.size > 0)
      headers.set("cookie", [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; "));
    const res = await this.app.request(path, { ...init, headers });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(";");
      const eq = pair?.indexOf("=") ?? -1;
      if (pair && eq > 0) this.cookies.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    return res;
  }

  async session(): Promise<{ csrfToken: string; voterVotes: number }> {
    const res = await this.request("/api/session");
    const body = (await res.json()) as { csrfToken: string; voterVotes: number };
    this.csrf = body.csrfToken;
    return body;
  }

  post(path: string, body: unknown, extra: Record<string, string> = {}): Promise<Response> {
    return this.request(path, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(this.csrf ? { "x-csrf-token": this.csrf } : {}),
        ...extra,
      },
      body: JSON.stringify(body),
    });
  }

  cookie(name: string): string | undefined {
    return this.cookies.get(name);
  }
}
