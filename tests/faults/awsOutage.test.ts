/**
 * The blob store (S3) and the queue (SQS) become unreachable for a while: moto's API server
 * behind a TCP proxy that is cut, then restored with its state intact. During the outage votes
 * on pairs already served are still stored (the vote path needs neither), and pair requests
 * answer 202/503 in the one error shape, never 500. Afterwards the generations created while the
 * queue was down are not left stuck: their jobs are sent again and they finish (or fail
 * visibly), and new pairs are served without a restart.
 */
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { CreateQueueCommand, SQSClient } from "@aws-sdk/client-sqs";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../functions/src/app.js";
import { PairPool } from "../../functions/src/voting/pairPool.js";
import {
  Browser,
  type Harness,
  openHarness,
  runFakeGenerator,
  seedBaseModel,
  seedPromptSet,
  seedReadyPairs,
} from "../api/votingHarness.js";
import { startMoto } from "../helpers/moto.js";
import { startTcpProxy, type TcpProxy } from "../helpers/tcpProxy.js";

type Json = Record<string, unknown> & { error?: { code: string; message: string } };

describe("S3 and SQS unreachable for a while", () => {
  let moto: Awaited<ReturnType<typeof startMoto>>;
  let proxy: TcpProxy;
  let h: Harness;
  let app: ReturnType<typeof createApp>;
  let pool: PairPool;

  beforeAll(async () => {
    moto = await startMoto();
    const s3 = new S3Client({ region: "us-east-1", endpoint: moto.endpoint, forcePathStyle: true });
    await s3.send(new CreateBucketCommand({ Bucket: "outage" }));
    s3.destroy();
    const sqs = new SQSClient({ region: "us-east-1", endpoint: moto.endpoint });
    const urls: Record<string, string> = {};
    for (const name of ["generation", "training", "results"]) {
      urls[name] = (await sqs.send(new CreateQueueCommand({ QueueName: `outage-${name}` }))).QueueUrl ?? "";
    }
    sqs.destroy();
    const port = Number(new URL(moto.endpoint).port);
    proxy = await startTcpProxy({ host: "127.0.0.1", port });
    const via = `http://127.0.0.1:${proxy.port}`;
    h = await openHarness("pglite", {
      BLOB_BACKEND: "s3",
      S3_BUCKET: "outage",
      S3_ENDPOINT: via,
      S3_FORCE_PATH_STYLE: "true",
      QUEUE_BACKEND: "sqs",
      SQS_ENDPOINT: via,
      SQS_GENERATION_QUEUE_URL: urls.generation as string,
      SQS_TRAINING_QUEUE_URL: urls.training as string,
      SQS_RESULTS_QUEUE_URL: urls.results as string,
      RATE_LIMIT_VOTER_PER_MINUTE: "100000",
      RATE_LIMIT_IP_PER_MINUTE: "100000",
      POOL_DEPTH: "4",
    });
    pool = new PairPool(
      { db: h.deps.db, queue: h.deps.queue, log: h.deps.log, depth: 4 },
      { topUpEveryMs: 100, sweepEveryMs: 200, leaseSeconds: 2, giveUpSeconds: 600 },
    );
    app = createApp(h.deps, { voting: { pool } });
    await seedBaseModel(h.deps);
    await seedReadyPairs(h.deps, 6, { promptSetName: "before-outage" });
    await seedPromptSet(h.deps, "during-outage", [
      "a red circle",
      "a blue square",
      "a green star",
      "a big moon",
    ]);
  });
  afterAll(async () => {
    await h?.close();
    await proxy?.close();
    await moto?.stop();
  });

  it("keeps votes flowing, answers pair requests without a 500, and un-sticks the generations after", async () => {
    const voter = new Browser(app);
    await voter.session();
    const served = (await (await voter.request("/api/pairs/next?promptSet=before-outage")).json()) as Json;
    expect(served.voteToken).toBeDefined();

    await proxy.cut();
    const vote = await voter.post("/api/votes", {
      token: served.voteToken,
      choice: "left",
      decisionMs: 1500,
    });
    expect(vote.status).toBe(201);
    for (let i = 0; i < 3; i++) {
      const res = await voter.request("/api/pairs/next?promptSet=during-outage");
      const body = (await res.json()) as Json;
      expect([202, 503], JSON.stringify(body)).toContain(res.status);
      if (res.status === 503) expect(body.error?.code).toBeDefined();
      await new Promise((r) => setTimeout(r, 300));
    }
    const [{ n: created } = { n: 0 }] = (
      (await h.deps.db.orm.execute(
        sql`select count(*)::int as n from generations g join prompts p on p.id = g.prompt_id
            join prompt_sets s on s.id = p.prompt_set_id where s.name = 'during-outage'`,
      )) as unknown as { rows: { n: number }[] }
    ).rows;
    await proxy.restore();
    const [{ t: restoredAt } = { t: "" }] = (
      (await h.deps.db.orm.execute(sql`select now()::text as t`)) as unknown as { rows: { t: string }[] }
    ).rows;
    /** Generations from before the restore that are still waiting for their image. */
    const stuckFromOutage = async () =>
      (
        (await h.deps.db.orm.execute(
          sql`select id, status from generations
              where status in ('queued', 'running') and created_at <= ${restoredAt}::timestamptz`,
        )) as unknown as { rows: { id: string; status: string }[] }
      ).rows;

    // The generator comes back with the queue; the pool's sweep re-sends what never reached it.
    const deadline = Date.now() + 30_000;
    let status = 0;
    while (Date.now() < deadline) {
      await runFakeGenerator(h.deps);
      const res = await voter.request("/api/pairs/next?promptSet=during-outage");
      status = res.status;
      await res.arrayBuffer();
      if (status === 200 && (await stuckFromOutage()).length === 0) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(status).toBe(200);
    const stuck = await stuckFromOutage();
    expect(stuck).toEqual([]);
    console.info(`generations created during the outage: ${created}; none left stuck`);
  });
});
