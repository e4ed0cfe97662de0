/**
 * The Hono application: a small core of route modules and middleware, shared by the Node server
 * and the Lambda entry. `createApp` takes built dependencies and does no I/O of its own.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Hono } from "hono";
import { secureHeaders } from "hono/secure-headers";
import { blobRoutes } from "./api/blobs.js";
import { healthRoutes } from "./api/health.js";
import { type VotingApiOptions, votingApi } from "./api/voting.js";
import { webAppRoutes } from "./api/webApp.js";
import type { Deps } from "./deps.js";
import { bodyLimits } from "./http/bodyLimit.js";
import { installErrorHandlers } from "./http/errors.js";
import { inputGuard } from "./http/inputGuard.js";

export function createApp(deps: Deps, opts: { voting?: VotingApiOptions } = {}): Hono {
  const app = new Hono();
  app.use("*", secureHeaders());
  app.use("*", bodyLimits(1024 * 1024, { "/api/admin/prompt-sets": 32 * 1024 * 1024 }), inputGuard());
  app.route("/", healthRoutes(deps));
  if (deps.blobs.kind === "fs") app.route("/", blobRoutes(deps));
  app.route("/", votingApi(deps, opts.voting));
  // The built web app, when there is one (the local server; in AWS it is on S3 behind CloudFront).
  if (existsSync(join(deps.config.web.distDir, "index.html")))
    app.route("/", webAppRoutes(deps.config.web.distDir));

  return installErrorHandlers(app, deps.log);
}
