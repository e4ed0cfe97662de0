/** Lambda entry for the results queue: training progress and results from the GPU worker. */
import { buildDeps } from "../deps.js";
import { eachDelivery, sqsBatchHandler } from "../platform/queue/consumer.js";
import { handleResultMessage } from "../training/results.js";
import { loadLambdaConfig } from "./lambda-config.js";

const deps = await buildDeps(await loadLambdaConfig(), { migrate: false });
export const handler = sqsBatchHandler(
  eachDelivery(async (d) => {
    await handleResultMessage(deps, d.body);
  }),
  deps.log,
);
