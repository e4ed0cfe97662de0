/** Reading stored snapshots: the list (newest first), one snapshot, a signed URL of one file. */
import { desc, eq, lt } from "drizzle-orm";
import { datasetSnapshots } from "../db/schema.js";
import type { Deps } from "../deps.js";
import type { Snapshot } from "./export.js";

export async function listSnapshots(
  db: Deps["db"],
  q: { limit: number; before?: Date | undefined },
): Promise<Snapshot[]> {
  return db.orm
    .select()
    .from(datasetSnapshots)
    .where(q.before ? lt(datasetSnapshots.createdAt, q.before) : undefined)
    .orderBy(desc(datasetSnapshots.createdAt), desc(datasetSnapshots.id))
    .limit(q.limit);
}

export async function findSnapshot(db: Deps["db"], id: string): Promise<Snapshot | null> {
  const [row] = await db.orm.select().from(datasetSnapshots).where(eq(datasetSnapshots.id, id));
  return row ?? null;
}

/** A signed, expiring URL of one of the snapshot's files, or null when it has no such split. */
export async function snapshotFileUrl(
  blobs: Deps["blobs"],
  snapshot: Snapshot,
  split: string,
): Promise<{ url: string; expiresInSeconds: number; key: string } | null> {
  const file = snapshot.files.find((f) => f.split === split);
  if (!file) return null;
  const expiresInSeconds = 900;
  return { url: await blobs.signedUrl(file.key, { expiresInSeconds }), expiresInSeconds, key: file.key };
}
