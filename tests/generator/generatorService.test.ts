/**
 * The GPU generator service's entry (functions/src/entries/generator-service.ts) run as its
 * container runs it, on this CPU machine: SQS (moto) with long polling, the real PostgreSQL server,
 * filesystem blobs, the micro SD model and INFERENCE_EXECUTION_PROVIDER=cuda. It renders a queued
 * job (on the CPU, saying so), and SIGTERM stops it promptly, mid long poll, with exit status 0.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from "@aws-sdk/client-sqs";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type QueueName, repoRoot } from "../../functions/src/config.js";
import type { GenerationJob } from "../../functions/src/contracts/jobs.js";
import { baseModels, generations, prompts } from "../../functions/src/db/schema.js";
import { generationImageKey } from "../../functions/src/generator/generator.js";
import type { Db } from "../../functions/src/platform/db/index.js";
import { openPostgres } from "../../functions/src/platform/db/postgres.js";
import { sqsJobQueue } from "../../functions/src/platform/queue/sqs.js";
import { startMoto } from "../helpers/moto.js";
import { throwawayDatabase } from "../helpers/postgres.js";
import { cudaProviderInstalled } from "../inference/fixtures.js";

const entry = "functions/src/entries/generator-service.ts";
const micro = `${repoRoot}tests/fixtures/inference/micro-sd/onnx`;

function startService(env: Record<string, string>) {
  const child = spawn(process.execPath, ["--import", "tsx", entry], {
    cwd: repoRoot,
    env: { ...process.env, PREFLOOP_ENV: "test", LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: Record<string, unknown>[] = [];
  let stderr = "";
  let pending = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    pending += chunk.toString();
    const parts = pending.split("\n");
    pending = parts.pop() ?? "";
    for (const line of parts) if (line.startsWith("{")) lines.push(JSON.parse(line));
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, lines, exited, stderr: () => stderr };
}

describe("generator service entry", () => {
  let moto: Awaited<ReturnType<typeof startMoto>>;
  let database: Awaited<ReturnType<typeof throwawayDatabase>>;
  let db: Db;
  let client: SQSClient;
  let scratch: string;
  const urls = {} as Record<QueueName, string>;
  let running: ChildProcess | undefined;

  beforeAll(async () => {
    moto = await startMoto();
    client = new SQSClient({ region: "us-east-1", endpoint: moto.endpoint });
    for (const name of ["generation", "training", "results"] as const) {
      const dlq = await client.send(new CreateQueueCommand({ QueueName: `${name}-dlq` }));
      const attrs = await client.send(
        new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ["QueueArn"] }),
      );
      const main = await client.send(
        new CreateQueueCommand({
          QueueName: name,
          Attributes: {
            RedrivePolicy: JSON.stringify({
              deadLetterTargetArn: attrs.Attributes?.QueueArn,
              maxReceiveCount: 3,
            }),
          },
        }),
      );
      urls[name] = main.QueueUrl ?? "";
    }
    database = await throwawayDatabase();
    db = await openPostgres(database.url);
    await db.migrate();
    scratch = mkdtempSync(join(tmpdir(), "prefloop-genservice-"));
  });
  afterAll(async () => {
    if (running && running.exitCode === null) running.kill("SIGKILL");
    await db?.close();
    await database?.drop();
    client?.destroy();
    await moto?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  it("renders a queued job, says which provider it runs on, and stops on SIGTERM mid long poll", async () => {
    await db.orm
      .insert(baseModels)
      .values({ id: "micro", name: "micro", family: "sd15", sha256: "x", width: 16, height: 16 });
    await db.orm.insert(prompts).values({ id: "p", text: "a red circle", source: "test" });
    const payload = {
      generationId: "g1",
      baseModelId: "micro",
      adapterId: null,
      adapterStrength: 1,
      prompt: "a red circle on a blue background",
      negativePrompt: "",
      seed: 42,
      sampler: "euler_ancestral" as const,
      steps: 4,
      guidance: 5,
      width: 16,
      height: 16,
      pairId: null,
    };
    await db.orm.insert(generations).values({
      id: "g1",
      promptId: "p",
      baseModelId: "micro",
      seed: "42",
      sampler: payload.sampler,
      steps: 4,
      guidance: 5,
      width: 16,
      height: 16,
    });
    const job: GenerationJob = {
      version: 1,
      id: "g1",
      createdAt: new Date().toISOString(),
      type: "generation",
      payload,
    };
    const queue = sqsJobQueue({ urls, region: "us-east-1", endpoint: moto.endpoint, client });
    await queue.send("generation", "g1", job);

    const service = startService({
      DATABASE_URL: database.url,
      QUEUE_BACKEND: "sqs",
      SQS_ENDPOINT: moto.endpoint,
      SQS_GENERATION_QUEUE_URL: urls.generation,
      SQS_TRAINING_QUEUE_URL: urls.training,
      SQS_RESULTS_QUEUE_URL: urls.results,
      BLOB_BACKEND: "fs",
      STATE_DIR: scratch,
      BLOB_DIR: join(scratch, "blobs"),
      MODEL_DIR: micro,
      INFERENCE_EXECUTION_PROVIDER: "cuda",
      INFERENCE_WORKERS: "1",
      INFERENCE_THREADS: "1",
    });
    running = service.child;
    const deadline = Date.now() + 90_000;
    let status: string | undefined;
    while (Date.now() < deadline && service.child.exitCode === null) {
      [{ status } = { status: undefined }] = await db.orm
        .select({ status: generations.status })
        .from(generations)
        .where(eq(generations.id, "g1"));
      if (status === "succeeded") break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(status, service.stderr()).toBe("succeeded");
    const [row] = await db.orm.select().from(generations).where(eq(generations.id, "g1"));
    expect(row?.blobKey).toBe(generationImageKey("g1"));

    // The loop is back in a 20 s long poll on the empty queue; SIGTERM ends it at once.
    await new Promise((r) => setTimeout(r, 1000));
    const stopAsked = performance.now();
    service.child.kill("SIGTERM");
    const code = await service.exited;
    const stopMs = performance.now() - stopAsked;
    expect(code).toBe(0);
    expect(stopMs).toBeLessThan(10_000);

    const byMsg = (msg: string) => service.lines.filter((l) => l.msg === msg);
    expect(byMsg("generator service started")[0]).toMatchObject({
      queue: "sqs",
      workers: 1,
      executionProvider: "cuda",
    });
    const expected = cudaProviderInstalled ? {} : { requested: "cuda", provider: "cpu" };
    const providerLines = service.lines.filter((l) =>
      String(l.msg).startsWith("inference execution provider"),
    );
    expect(providerLines).toHaveLength(1);
    expect(providerLines[0]).toMatchObject(expected);
    expect(byMsg("generation succeeded")[0]).toMatchObject({ generationId: "g1" });
    expect(byMsg("generator service stopping")).toHaveLength(1);
    expect(service.lines.filter((l) => l.msg === "queue receive failed")).toEqual([]);
  }, 150_000);

  it("a bad setting stops it at start with one line naming the variable and status 2", async () => {
    const service = startService({ INFERENCE_EXECUTION_PROVIDER: "gpu" });
    running = service.child;
    expect(await service.exited).toBe(2);
    expect(service.stderr().trim()).toBe(
      'prefloop: configuration error: INFERENCE_EXECUTION_PROVIDER must be cpu or cuda (got "gpu")',
    );
  });
});
