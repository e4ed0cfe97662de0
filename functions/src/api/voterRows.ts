/** The voter row behind a signed cookie, recreated when it has gone missing. */
import type { Db } from "../platform/db/port.js";
import { pgCode } from "../platform/db/rows.js";
import { ensureVoter } from "./voterSession.js";

/**
 * Runs `fn`; if the voter row is gone (a database reset under an old cookie: a foreign-key
 * violation), recreates it and runs `fn` once more.
 */
export async function withVoter<T>(db: Db, voterId: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (pgCode(err) !== "23503") throw err;
    await ensureVoter(db, voterId);
    return fn();
  }
}
