import { createHash } from "node:crypto";
import type { SQL } from "drizzle-orm";
import type { PgDialect } from "drizzle-orm/pg-core";
import type { Orm } from "./port.js";

/** Rows of a raw SQL query, on PGlite and node-postgres alike. */
export async function rows<T>(orm: Orm, query: SQL): Promise<T[]> {
  return ((await orm.execute(query)) as unknown as { rows: T[] }).rows;
}

const statementNames = new Map<string, string>();

/** A name per distinct statement text: the same text always gets the same name. */
function statementName(text: string): string {
  let name = statementNames.get(text);
  if (name === undefined) {
    name = `q_${createHash("sha256").update(text).digest("base64url").slice(0, 24)}`;
    if (statementNames.size < 10_000) statementNames.set(text, name);
  }
  return name;
}

/**
 * `rows`, as a named prepared statement: PostgreSQL parses and plans it once per connection
 * instead of on every call (planning the pool's claim took twice as long as running it). For
 * queries on the request path whose text takes few shapes; the name is a hash of the text, so
 * parameters never make new statements. PGlite runs it like `rows`.
 */
export async function preparedRows<T>(orm: Orm, query: SQL): Promise<T[]> {
  // drizzle's own `execute`, with a statement name (the dialect is not in drizzle's public types)
  const built = (orm as unknown as { dialect: PgDialect }).dialect.sqlToQuery(query);
  const prepared = orm._.session.prepareQuery(built, undefined, statementName(built.sql), false);
  return ((await prepared.execute()) as unknown as { rows: T[] }).rows;
}

/** The PostgreSQL error code of a driver error (drizzle wraps it in `cause`), if any. */
export function pgCode(err: unknown): string | undefined {
  for (let e: unknown = err, i = 0; e && i < 4; e = (e as { cause?: unknown }).cause, i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code)) return code;
  }
  return undefined;
}
