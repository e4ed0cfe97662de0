/**
 * What a first local start does so the platform shows something at once: on an empty embedded
 * database (PGlite, no prompt set yet) it imports the tiny model's caption grammar as the prompt
 * set `shapes` and tops the pair pool up, so the voting page has pairs within a minute.
 */
import { sql } from "drizzle-orm";
import type { Deps } from "../deps.js";
import { shapesPromptSet } from "../domain/shapesPromptSet.js";
import { rows } from "../platform/db/rows.js";
import { PairPool } from "../voting/pairPool.js";
import { importPromptSet } from "../voting/promptSets.js";

/** Imports `shapes` when the embedded database holds no prompt set; returns how many prompts, or null. */
export async function importShapesOnFirstStart(deps: Deps): Promise<number | null> {
  if (deps.db.kind !== "pglite") return null;
  const [r] = await rows<{ n: number }>(deps.db.orm, sql`select count(*)::int as n from prompt_sets`);
  if ((r?.n ?? 0) > 0) return null;
  const { name, items } = shapesPromptSet();
  const imported = await importPromptSet(deps.db, { name, source: "shapes-grammar" }, items);
  // Queue the first pairs' generations now rather than on the first voter's visit.
  const pool = new PairPool({
    db: deps.db,
    queue: deps.queue,
    log: deps.log,
    depth: deps.config.voting.poolDepth,
  });
  await pool.topUp({ experimentId: null, promptSetId: null });
  return imported.imported;
}

/** The link that signs an admin in: the key rides in the fragment, which never reaches a server log. */
export function signInLink(publicUrl: string, adminKey: string): string {
  return `${publicUrl.replace(/\/$/, "")}/admin#key=${encodeURIComponent(adminKey)}`;
}
