/** Node server entry: config → deps → app → listen, plus the queue consumers of the local platform. */
import { serve } from "@hono/node-server";
import { createApp } from "../app.js";
import { startDemoMode } from "../demo/demoVoters.js";
import { buildDeps, resolveAdminApiKey } from "../deps.js";
import { startLocalGenerator } from "../generator/consumer.js";
import { registerLocalBaseModel } from "../local/baseModel.js";
import { startLocalConsumers } from "../local/consumers.js";
import { importShapesOnFirstStart, signInLink } from "../local/firstStart.js";
import { startLoopTimer } from "../loop/tick.js";
import { loadConfigOrExit } from "./boot.js";

const loaded = loadConfigOrExit();
const config = { ...loaded, adminApiKey: resolveAdminApiKey(loaded) };
const deps = await buildDeps(config);
const modelDir = config.inference.modelDir;
const baseModelId = modelDir.startsWith("blob:") ? null : await registerLocalBaseModel(deps.db, modelDir);
if (!baseModelId) deps.log.warn("no exported base model registered", { modelDir });
const firstImport = await importShapesOnFirstStart(deps);
const app = createApp(deps);
const stopConsumers = startLocalConsumers(deps);
const stopGenerator = startLocalGenerator(deps);
const stopLoop = startLoopTimer(deps);
let stopDemo = async () => {};

const server = serve({ fetch: app.fetch, hostname: config.host, port: config.port }, () => {
  deps.log.info("listening", {
    url: config.publicUrl,
    db: deps.db.kind,
    blobs: deps.blobs.kind,
    queue: deps.queue.kind,
    baseModelId,
  });
  process.stdout.write(`\nprefloop is running: open ${config.publicUrl}\n`);
  if (firstImport !== null) {
    process.stdout.write(
      `First start: imported the prompt set "shapes" (${firstImport} prompts); pairs are on their way.\n`,
    );
  }
  if (config.env === "dev" && config.adminApiKey) {
    process.stdout.write(`Sign in: ${signInLink(config.publicUrl, config.adminApiKey)}\n`);
  }
  process.stdout.write("\n");
  stopDemo = startDemoMode(deps, config.publicUrl);
  if (config.demo.voters > 0) {
    process.stdout.write(
      `Demo: ${config.demo.voters} simulated voters prefer "${config.demo.preference}" images.\n\n`,
    );
  }
});

const shutdown = () => {
  server.close(
    () =>
      void Promise.all([stopDemo(), stopLoop(), stopConsumers(), stopGenerator()])
        .then(() => deps.close())
        .then(() => process.exit(0)),
  );
};
process.on("SIGINT", shutdown);
process.on("SIGTERM", shutdown);
