/**
 * The Node server (`functions/src/entries/server.ts`) as a child process, for the benchmarks and
 * the fault tests that kill it: started with tsx on a given database, port and state folder;
 * `ready` resolves once `/readyz` answers (the migrations are applied by then).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { repoRoot } from "../../functions/src/config.js";

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  /** Resolves when /readyz answers 200; rejects if the process exits first or after `timeoutMs`. */
  ready(timeoutMs?: number): Promise<void>;
  /** SIGKILL, and resolves when the process is gone. */
  kill(): Promise<void>;
  /** SIGTERM, and resolves when the process is gone (SIGKILL after 10 s). */
  stop(): Promise<void>;
}

export function startServerProcess(opts: {
  port: number;
  databaseUrl: string;
  stateDir: string;
  signingSecret: string;
  env?: Record<string, string>;
  nodeArgs?: string[];
}): ServerProcess {
  const url = `http://127.0.0.1:${opts.port}`;
  const child = spawn(
    process.execPath,
    [...(opts.nodeArgs ?? []), "--import", "tsx", "functions/src/entries/server.ts"],
    {
      cwd: repoRoot,
      env: {
        ...process.env,
        PREFLOOP_ENV: "test",
        PORT: String(opts.port),
        STATE_DIR: opts.stateDir,
        DATABASE_URL: opts.databaseUrl,
        SIGNING_SECRET: opts.signingSecret,
        LOG_LEVEL: "warn",
        LOOP_ENABLED: "false",
        ...opts.env,
      },
      stdio: ["ignore", "ignore", "inherit"],
    },
  );
  const gone = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    url,
    child,
    async ready(timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`server exited (${child.exitCode ?? child.signalCode})`);
        }
        try {
          if ((await fetch(`${url}/readyz`)).ok) return;
        } catch {
          // not listening yet
        }
        if (Date.now() > deadline) throw new Error("server did not become ready");
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await gone;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await gone;
      clearTimeout(timer);
    },
  };
}
