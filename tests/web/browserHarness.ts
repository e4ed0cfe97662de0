/**
 * End-to-end harness: builds web/ when its sources are newer than web/dist, serves the app on
 * loopback, and launches Debian's Chromium headless through playwright-core.
 */
import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import { type Browser, chromium } from "playwright-core";
import { build } from "vite";
import type { VotingApiOptions } from "../../functions/src/api/voting.js";
import { createApp } from "../../functions/src/app.js";
import { repoRoot } from "../../functions/src/config.js";
import type { Deps } from "../../functions/src/deps.js";

export const webDir = join(repoRoot, "web");
export const distDir = join(webDir, "dist");
export const artifactsDir = join(repoRoot, "test-artifacts");
export const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

function newestMtime(path: string): number {
  const s = statSync(path);
  if (!s.isDirectory()) return s.mtimeMs;
  return Math.max(s.mtimeMs, ...readdirSync(path).map((n) => newestMtime(join(path, n))));
}

/** Builds web/ with Vite unless web/dist is newer than every source file. */
export async function ensureWebBuilt(): Promise<void> {
  const index = join(distDir, "index.html");
  const sources = ["src", "public", "index.html", "admin.html", "vite.config.ts"]
    .map((p) => join(webDir, p))
    .filter(existsSync);
  const newest = Math.max(
    ...sources.map(newestMtime),
    newestMtime(join(repoRoot, "functions/src/api/votingSchemas.ts")),
  );
  if (existsSync(index) && statSync(index).mtimeMs >= newest) return;
  await build({ root: webDir, configFile: join(webDir, "vite.config.ts"), logLevel: "warn" });
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Serves createApp(deps) on 127.0.0.1:port (deps' PUBLIC_URL must name the same port). */
export async function startServer(
  deps: Deps,
  port: number,
  voting?: VotingApiOptions,
): Promise<() => Promise<void>> {
  const app = createApp(deps, voting ? { voting } : {});
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: "127.0.0.1", port }, () => resolve(s));
  });
  return () => new Promise<void>((resolve) => server.close(() => resolve()));
}

export async function launchChromium(): Promise<Browser> {
  mkdirSync(artifactsDir, { recursive: true });
  return chromium.launch({
    executablePath: chromiumPath,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}
