import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/node-postgres";
import { migrate } from "drizzle-orm/node-postgres/migrator";
import pg from "pg";
import { schema } from "../../db/schema.js";
import { migrationsFolder } from "./migrations.js";
import type { Db, Orm } from "./port.js";

/** PostgreSQL through node-postgres (the machine's server, Aurora via RDS Proxy in AWS). */
export async function openPostgres(url: string, opts: { maxConnections?: number } = {}): Promise<Db> {
  const pool = new pg.Pool({ connectionString: url, max: opts.maxConnections ?? 10 });
  // An idle connection the server drops (a restart, a failover, pg_terminate_backend) is reported
  // here; the pool has already discarded it and opens a new one on the next query. Without a
  // listener the event would end the process.
  pool.on("error", () => undefined);
  const orm = drizzle({ client: pool, schema }) as unknown as Orm;
  return {
    kind: "postgres",
    orm,
    migrate: () => migrate(drizzle({ client: pool, schema }), { migrationsFolder }),
    ping: async () => {
      await orm.execute(sql`select 1`);
    },
    close: () => pool.end(),
  };
}
