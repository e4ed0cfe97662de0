/**
 * A first local start as a newcomer meets it: the Node server on an empty state folder imports the
 * shapes prompt set, writes a dev admin key and prints a sign-in link whose key opens a session.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { repoRoot } from "../../functions/src/config.js";
import { freePort } from "../helpers/moto.js";

const state = mkdtempSync(join(tmpdir(), "prefloop-first-start-"));
afterAll(() => rmSync(state, { recursive: true, force: true }));

describe("first local start", () => {
  it("imports the shapes prompt set, writes a dev admin key and prints a working sign-in link", async () => {
    const port = await freePort();
    const env: Record<string, string | undefined> = {
      ...process.env,
      PORT: String(port),
      STATE_DIR: state,
      LOG_LEVEL: "warn",
      INFERENCE_WORKERS: "0",
    };
    delete env.ADMIN_API_KEY;
    delete env.PREFLOOP_ENV;
    const child: ChildProcess = spawn(
      join(repoRoot, "node_modules/.bin/tsx"),
      [join(repoRoot, "functions/src/entries/server.ts")],
      { env, stdio: "pipe" },
    );
    let out = "";
    child.stdout?.on("data", (b) => {
      out += String(b);
    });
    try {
      const deadline = Date.now() + 90_000;
      while (!out.includes("Sign in: ")) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`server did not start: ${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(out).toContain('First start: imported the prompt set "shapes" (2352 prompts)');
      const link = /Sign in: (\S+)/.exec(out)?.[1] ?? "";
      const key = readFileSync(join(state, "admin-key"), "utf8").trim();
      expect(link).toBe(`http://127.0.0.1:${port}/admin#key=${encodeURIComponent(key)}`);

      const signIn = await fetch(`http://127.0.0.1:${port}/api/admin/session`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ key: decodeURIComponent(new URL(link).hash.slice("#key=".length)) }),
      });
      expect(signIn.status).toBe(200);
      const cookie = (signIn.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
      const sets = await fetch(`http://127.0.0.1:${port}/api/admin/prompt-sets`, { headers: { cookie } });
      expect(((await sets.json()) as { promptSets: { name: string; prompts: number }[] }).promptSets).toEqual(
        [expect.objectContaining({ name: "shapes", prompts: 2352 })],
      );
      const pool = await fetch(`http://127.0.0.1:${port}/api/admin/pool`, { headers: { cookie } });
      const counts = (await pool.json()) as { ready: number; generating: number };
      expect(counts.ready + counts.generating).toBeGreaterThan(0); // pairs are on their way
    } finally {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    }
  }, 120_000);
});
