/**
 * The adapter registry: what is registered, where each adapter came from (its lineage to the
 * base model, snapshot, training run), which one is the champion of its base model, and the
 * two state changes a person or the loop makes: promote (one champion per base model, atomic,
 * the previous champion retired) and retire.
 */
import { and, desc, eq, lt, ne, type SQL, sql } from "drizzle-orm";
import { adapters, trainingRuns } from "../db/schema.js";
import type { Deps } from "../deps.js";
import type { Db } from "../platform/db/port.js";

export type Adapter = typeof adapters.$inferSelect;
export type AdapterStatus = Adapter["status"];

export class AdapterNotFound extends Error {
  override name = "AdapterNotFound";
}

/** The champion of a base model, or null while the base model itself is the champion. */
export async function currentChampion(db: Db, baseModelId: string): Promise<Adapter | null> {
  const [row] = await db.orm
    .select()
    .from(adapters)
    .where(and(eq(adapters.baseModelId, baseModelId), eq(adapters.status, "champion")));
  return row ?? null;
}

export async function findAdapter(db: Db, id: string): Promise<Adapter | null> {
  const [row] = await db.orm.select().from(adapters).where(eq(adapters.id, id));
  return row ?? null;
}

export interface AdapterFilter {
  baseModelId?: string | undefined;
  status?: AdapterStatus | undefined;
  objective?: string | undefined;
  space?: string | undefined;
  parentAdapterId?: string | undefined;
  datasetSnapshotId?: string | undefined;
  /** Created before this instant (paging: the last row's createdAt). */
  before?: Date | undefined;
  limit: number;
}

/** Newest first. */
export async function listAdapters(db: Db, f: AdapterFilter): Promise<Adapter[]> {
  const where: SQL[] = [];
  if (f.baseModelId) where.push(eq(adapters.baseModelId, f.baseModelId));
  if (f.status) where.push(eq(adapters.status, f.status));
  if (f.objective) where.push(eq(adapters.objective, f.objective));
  if (f.space) where.push(eq(adapters.space, f.space));
  if (f.parentAdapterId) where.push(eq(adapters.parentAdapterId, f.parentAdapterId));
  if (f.datasetSnapshotId) where.push(eq(adapters.datasetSnapshotId, f.datasetSnapshotId));
  if (f.before) where.push(lt(adapters.createdAt, f.before));
  return db.orm
    .select()
    .from(adapters)
    .where(where.length > 0 ? and(...where) : undefined)
    .orderBy(desc(adapters.createdAt), desc(adapters.id))
    .limit(f.limit);
}

export interface LineageStep {
  adapterId: string;
  status: AdapterStatus;
  objective: string | null;
  space: string | null;
  datasetSnapshotId: string | null;
  trainingRunId: string | null;
  createdAt: Date;
}

/**
 * The chain from an adapter to the base model: the adapter first, then its parent, and so on.
 * `complete` is false when a parent is not registered here (the chain stops at it).
 */
export async function lineage(
  db: Db,
  adapter: Adapter,
): Promise<{ chain: LineageStep[]; baseModelId: string; complete: boolean; missingParentId: string | null }> {
  const chain: LineageStep[] = [];
  const seen = new Set<string>();
  let current: Adapter | null = adapter;
  while (current && !seen.has(current.id) && chain.length < 1000) {
    seen.add(current.id);
    const [run] = await db.orm
      .select({ id: trainingRuns.id })
      .from(trainingRuns)
      .where(eq(trainingRuns.adapterId, current.id));
    chain.push({
      adapterId: current.id,
      status: current.status,
      objective: current.objective,
      space: current.space,
      datasetSnapshotId: current.datasetSnapshotId,
      trainingRunId: run?.id ?? null,
      createdAt: current.createdAt,
    });
    if (!current.parentAdapterId)
      return { chain, baseModelId: adapter.baseModelId, complete: true, missingParentId: null };
    const parentId: string = current.parentAdapterId;
    current = await findAdapter(db, parentId);
    if (!current)
      return { chain, baseModelId: adapter.baseModelId, complete: false, missingParentId: parentId };
  }
  return { chain, baseModelId: adapter.baseModelId, complete: false, missingParentId: null };
}

export interface StateChange {
  actor: string;
  reason: string;
}

/**
 * Makes the adapter the champion of its base model; the previous champion becomes `retired`.
 * Atomic (the base model's row is locked, so two promotions at once take turns) and idempotent
 * (promoting the champion changes nothing). A retired adapter can be promoted again (a rollback).
 */
export async function promoteAdapter(
  db: Db,
  adapterId: string,
  change: StateChange,
  log?: Deps["log"],
): Promise<{ adapter: Adapter; previousChampionId: string | null; changed: boolean }> {
  const out = await db.orm.transaction(async (tx) => {
    const [a] = await tx.select().from(adapters).where(eq(adapters.id, adapterId));
    if (!a) throw new AdapterNotFound(`There is no adapter ${adapterId}.`);
    await tx.execute(sql`select id from base_models where id = ${a.baseModelId} for update`);
    const [fresh] = await tx.select().from(adapters).where(eq(adapters.id, adapterId));
    if (fresh?.status === "champion") return { adapter: fresh, previousChampionId: null, changed: false };
    const retired = await tx
      .update(adapters)
      .set({ status: "retired", retiredAt: sql`now()` })
      .where(
        and(
          eq(adapters.baseModelId, a.baseModelId),
          eq(adapters.status, "champion"),
          ne(adapters.id, adapterId),
        ),
      )
      .returning({ id: adapters.id });
    const [promoted] = await tx
      .update(adapters)
      .set({ status: "champion", promotedAt: sql`now()`, retiredAt: null })
      .where(eq(adapters.id, adapterId))
      .returning();
    return { adapter: promoted as Adapter, previousChampionId: retired[0]?.id ?? null, changed: true };
  });
  if (out.changed)
    log?.info("adapter promoted", {
      adapterId,
      previousChampionId: out.previousChampionId,
      actor: change.actor,
      reason: change.reason,
    });
  return out;
}

/**
 * Takes the adapter out of service (`retired`, `retired_at` set); idempotent. Retiring the
 * champion leaves the base model itself as the champion.
 */
export async function retireAdapter(
  db: Db,
  adapterId: string,
  change: StateChange,
  log?: Deps["log"],
): Promise<{ adapter: Adapter; changed: boolean }> {
  const [updated] = await db.orm
    .update(adapters)
    .set({ status: "retired", retiredAt: sql`now()` })
    .where(and(eq(adapters.id, adapterId), ne(adapters.status, "retired")))
    .returning();
  if (updated) {
    log?.info("adapter retired", { adapterId, actor: change.actor, reason: change.reason });
    return { adapter: updated, changed: true };
  }
  const existing = await findAdapter(db, adapterId);
  if (!existing) throw new AdapterNotFound(`There is no adapter ${adapterId}.`);
  return { adapter: existing, changed: false };
}
