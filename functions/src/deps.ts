/**
 * Builds the platform's dependencies (ports and their adapters) from the configuration. Every
 * runtime entry calls this and nothing else to get a database, blob store and queue.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "./config.js";
import { fsBlobStore } from "./platform/blob/fs.js";
import type { BlobStore } from "./platform/blob/port.js";
import { s3BlobStore } from "./platform/blob/s3.js";
import { type Db, openDb } from "./platform/db/index.js";
import { jsonLogger, type Logger } from "./platform/log.js";
import { pgJobQueue } from "./platform/queue/pg.js";
import type { JobQueue } from "./platform/queue/port.js";
import { sqsJobQueue } from "./platform/queue/sqs.js";
import { Signer } from "./platform/signing.js";

export interface Deps {
  config: Config;
  db: Db;
  blobs: BlobStore;
  queue: JobQueue;
  signer: Signer;
  log: Logger;
  close(): Promise<void>;
}

/**
 * The signing secret: from config, or in dev/test a random one kept in the state folder so
 * tokens survive restarts. Never a constant in code.
 */
export function resolveSigningSecret(config: Config): string {
  if (config.signingSecret) return config.signingSecret;
  if (config.env === "prod") throw new Error("SIGNING_SECRET is required when PREFLOOP_ENV=prod");
  const file = join(config.stateDir, "signing-secret");
  if (existsSync(file)) return readFileSync(file, "utf8").trim();
  mkdirSync(config.stateDir, { recursive: true });
  const secret = randomBytes(32).toString("base64url");
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return secret;
}

/**
 * The local server's admin key: from config, or in dev, when ADMIN_API_KEY is unset, a random one
 * kept in the state folder (`STATE_DIR/admin-key`), so a local start has a working admin sign-in.
 * In test and prod an unset key keeps the admin API closed; Lambda reads it from Secrets Manager.
 */
export function resolveAdminApiKey(config: Config): string | undefined {
  if (config.adminApiKey || config.env !== "dev") return config.adminApiKey;
  const file = join(config.stateDir, "admin-key");
  if (existsSync(file)) return readFileSync(file, "utf8").trim();
  mkdirSync(config.stateDir, { recursive: true });
  const key = randomBytes(32).toString("base64url");
  writeFileSync(file, `${key}\n`, { mode: 0o600 });
  return key;
}

/**
 * `migrate: false` for Lambda handlers: migrations run once per deploy (lambda-migrate), not on
 * every cold start.
 */
export async function buildDeps(
  config: Config,
  overrides: Partial<Pick<Deps, "log">> & { migrate?: boolean } = {},
): Promise<Deps> {
  const log = overrides.log ?? jsonLogger(config.logLevel);
  const signer = Signer.lazy(() => resolveSigningSecret(config));
  const db = await openDb(config);
  if (overrides.migrate ?? true) await db.migrate();
  const b = config.blob;
  const blobs =
    b.backend === "s3"
      ? s3BlobStore({
          bucket: b.bucket,
          region: b.region,
          endpoint: b.endpoint,
          forcePathStyle: b.forcePathStyle,
          defaultTtlSeconds: b.signedUrlTtlSeconds,
        })
      : fsBlobStore({
          root: b.dir,
          publicUrl: config.publicUrl,
          signer,
          defaultTtlSeconds: b.signedUrlTtlSeconds,
        });
  const q = config.queue;
  const queue =
    q.backend === "sqs"
      ? sqsJobQueue({ urls: q.urls, region: q.region, endpoint: q.endpoint })
      : pgJobQueue(db.orm, { maxAttempts: q.maxAttempts });
  return { config, db, blobs, queue, signer, log, close: () => db.close() };
}
