/** Finding and importing prompt sets (parsed by domain/promptImport) and writing voter prompts. */
import { randomUUID } from "node:crypto";
import { eq, sql } from "drizzle-orm";
import { promptSets, prompts } from "../db/schema.js";
import type { ImportedPrompt } from "../domain/promptImport.js";
import type { Db } from "../platform/db/port.js";
import { preparedRows, rows } from "../platform/db/rows.js";

const BATCH = 500;

export interface PromptSetRef {
  id: string;
  name: string;
}

/** Resolves a prompt set given by id or name; null when there is none. */
export async function findPromptSet(db: Db, idOrName: string): Promise<PromptSetRef | null> {
  const [s] = await preparedRows<PromptSetRef>(
    db.orm,
    sql`select id, name from prompt_sets where id = ${idOrName} or name = ${idOrName} limit 1`,
  );
  return s ?? null;
}

/**
 * `findPromptSet` for the request path, remembered: a set is never renamed or removed, so a set
 * once found stays right; a miss is looked up again after `missTtlMs` (a set imported meanwhile).
 */
export class PromptSetLookup {
  private readonly found = new Map<string, PromptSetRef>();
  private readonly missed = new Map<string, number>();

  constructor(
    private readonly db: Db,
    private readonly opts: { missTtlMs: number; maxEntries: number } = {
      missTtlMs: 2_000,
      maxEntries: 10_000,
    },
  ) {}

  async find(idOrName: string): Promise<PromptSetRef | null> {
    const known = this.found.get(idOrName);
    if (known) return known;
    const missedAt = this.missed.get(idOrName);
    if (missedAt !== undefined && Date.now() - missedAt < this.opts.missTtlMs) return null;
    const s = await findPromptSet(this.db, idOrName);
    const memo = s ? this.found : this.missed;
    if (memo.size >= this.opts.maxEntries) memo.clear();
    if (s) {
      this.found.set(idOrName, s);
      this.missed.delete(idOrName);
    } else this.missed.set(idOrName, Date.now());
    return s;
  }
}

/** Creates the set (by name) if needed and adds the prompts it does not hold yet. */
export async function importPromptSet(
  db: Db,
  set: { name: string; source: string },
  items: readonly ImportedPrompt[],
): Promise<{ promptSetId: string; created: boolean; imported: number; alreadyPresent: number }> {
  return db.orm.transaction(async (tx) => {
    const inserted = await tx
      .insert(promptSets)
      .values({ id: `ps_${randomUUID()}`, name: set.name, source: set.source })
      .onConflictDoNothing({ target: promptSets.name })
      .returning({ id: promptSets.id });
    const created = inserted.length > 0;
    const [existing] = created
      ? inserted
      : await tx.select({ id: promptSets.id }).from(promptSets).where(eq(promptSets.name, set.name));
    if (!existing) throw new Error(`prompt set ${set.name} vanished during import`);
    let imported = 0;
    for (let i = 0; i < items.length; i += BATCH) {
      const chunk = items.slice(i, i + BATCH).map((p) => ({
        id: `pr_${randomUUID()}`,
        promptSetId: existing.id,
        text: p.text,
        category: p.category,
        challenge: p.challenge,
        source: set.source,
      }));
      const r = await tx
        .insert(prompts)
        .values(chunk)
        .onConflictDoNothing({ target: [prompts.promptSetId, prompts.text] })
        .returning({ id: prompts.id });
      imported += r.length;
    }
    return { promptSetId: existing.id, created, imported, alreadyPresent: items.length - imported };
  });
}

export async function listPromptSets(
  db: Db,
): Promise<{ id: string; name: string; source: string; prompts: number; createdAt: string }[]> {
  const r = await rows<{ id: string; name: string; source: string; n: number; created_at: Date | string }>(
    db.orm,
    sql`select s.id, s.name, s.source, s.created_at, (select count(*)::int from prompts p where p.prompt_set_id = s.id) as n
        from prompt_sets s order by s.created_at, s.name`,
  );
  return r.map((s) => ({
    id: s.id,
    name: s.name,
    source: s.source,
    prompts: s.n,
    createdAt: new Date(s.created_at).toISOString(),
  }));
}

/** A prompt a voter wrote (in no set). */
export async function insertVoterPrompt(db: Db, voterId: string, text: string): Promise<string> {
  const id = `pr_${randomUUID()}`;
  await db.orm
    .insert(prompts)
    .values({ id, promptSetId: null, text, source: "voter", createdByVoterId: voterId });
  return id;
}
