/**
 * The API's resources beyond voting (leaderboard, snapshots, training runs, adapters,
 * experiments, the loop, voters' quality, admin sign-in). Each lives in its own route file and
 * registers its routes on the one OpenAPI app, so every route is in `/openapi.json` and every
 * `/api/admin/*` route sits behind the admin guard that `registerAdminRoutes` installs first.
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Deps } from "../deps.js";
import type { PairPool } from "../voting/pairPool.js";
import { registerAdminAdapterRoutes } from "./adminAdapters.js";
import { registerAdminExperimentRoutes } from "./adminExperiments.js";
import { registerAdminGenerationRoutes } from "./adminGenerations.js";
import { registerAdminLoopRoutes } from "./adminLoop.js";
import { registerAdminPlaygroundRoutes } from "./adminPlayground.js";
import { registerAdminSnapshotRoutes } from "./adminSnapshots.js";
import { registerAdminTrainingRunRoutes } from "./adminTrainingRuns.js";
import { registerAdminVoterRoutes } from "./adminVoters.js";
import { registerLeaderboardRoutes } from "./leaderboard.js";
import type { VoterEnv } from "./voterSession.js";

export type ApiApp = OpenAPIHono<VoterEnv>;

/** One line per resource module: `registerXRoutes(app, deps)`. */
export function registerResourceRoutes(app: ApiApp, deps: Deps, _pool: PairPool): void {
  registerAdminPlaygroundRoutes(app, deps);
  registerAdminGenerationRoutes(app, deps);
  registerAdminExperimentRoutes(app, deps);
  registerAdminSnapshotRoutes(app, deps);
  registerAdminTrainingRunRoutes(app, deps);
  registerAdminAdapterRoutes(app, deps);
  registerAdminLoopRoutes(app, deps);
  registerLeaderboardRoutes(app, deps);
  registerAdminVoterRoutes(app, deps);
}
