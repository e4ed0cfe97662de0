/**
 * Demo mode: `DEMO_VOTERS` simulated voters (`npm start -- --demo` sets 8) that vote through the
 * server's public HTTP API with a hidden taste (`DEMO_PREFERENCE`, `DEMO_NOISE`), so the loop
 * turns on its own: votes, snapshot, training, experiment, promotion.
 *
 * Demo voters are marked in the data (`voters.is_demo`). The server process creates their rows
 * directly in the database and signs their voter cookies with its own key, so nobody outside
 * can make a voter count as a demo voter (nor a demo voter pass as a person).
 */
import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import { voterCookieHeader } from "../api/voterCookie.js";
import type { Db } from "../platform/db/port.js";
import type { Logger } from "../platform/log.js";
import type { Signer } from "../platform/signing.js";
import { cryptoRandom } from "../voting/pairPool.js";
import type { PreferenceRule } from "./preference.js";
import {
  httpTransport,
  SimulatedVoter,
  type SimulatedVoterOptions,
  type Transport,
} from "./simulatedVoter.js";

/** Creates a demo voter row (`is_demo`) and returns its id and its signed voter cookie (`name=value`). */
export async function createDemoVoter(deps: {
  db: Db;
  signer: Signer;
}): Promise<{ id: string; cookie: string }> {
  const id = `v_demo_${randomUUID()}`;
  await deps.db.orm.execute(
    sql`insert into voters (id, last_seen_at, is_demo) values (${id}, now(), true)
        on conflict (id) do update set is_demo = true`,
  );
  return { id, cookie: await voterCookieHeader(deps.signer, id) };
}

export interface DemoSettings {
  voters: number;
  preference: PreferenceRule;
  noise: number;
}

/** Simulated demo voters over a transport; each with its own demo cookie. */
export async function demoVoters(
  deps: { db: Db; signer: Signer },
  transport: Transport,
  settings: DemoSettings,
  extra: Partial<SimulatedVoterOptions> = {},
): Promise<SimulatedVoter[]> {
  const out: SimulatedVoter[] = [];
  for (let i = 0; i < settings.voters; i++) {
    const { cookie } = await createDemoVoter(deps);
    out.push(
      new SimulatedVoter(transport, {
        rule: settings.preference,
        noise: settings.noise,
        random: cryptoRandom,
        cookie,
        ...extra,
      }),
    );
  }
  return out;
}

/**
 * Starts the demo voters against the running server: each votes about every 1–3 s (its
 * decision time), waiting whenever the server says so. Returns a function that stops them.
 */
export async function startDemoVoters(
  deps: { db: Db; signer: Signer; log: Logger },
  transport: Transport,
  settings: DemoSettings,
): Promise<() => Promise<void>> {
  if (settings.voters <= 0) return async () => {};
  const voters = await demoVoters(deps, transport, settings);
  const controller = new AbortController();
  const runs = voters.map((v, i) =>
    v.run(controller.signal, (err) =>
      deps.log.warn("demo voter error", {
        voter: i,
        error: err instanceof Error ? err.message : String(err),
      }),
    ),
  );
  deps.log.info("demo voters started", { ...settings });
  return async () => {
    controller.abort();
    await Promise.all(runs);
  };
}

/**
 * Demo mode in the Node server: when `config.demo.voters` > 0, starts that many demo voters
 * against the server at `baseUrl` over HTTP. Returns a function that stops them.
 */
export function startDemoMode(
  deps: { db: Db; signer: Signer; log: Logger; config: { demo: DemoSettings } },
  baseUrl: string,
): () => Promise<void> {
  if (deps.config.demo.voters <= 0) return async () => {};
  const started = startDemoVoters(deps, httpTransport(baseUrl), deps.config.demo).catch((err) => {
    deps.log.error("demo voters not started", { error: String(err) });
    return async () => {};
  });
  return async () => (await started)();
}
