import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, repoRoot, requireServingSecrets } from "../../functions/src/config.js";

describe("loadConfig", () => {
  it("defaults to the embedded platform: PGlite, filesystem blobs, Postgres queue", () => {
    const c = loadConfig({ STATE_DIR: "/tmp/s" });
    expect(c.databaseUrl).toBeUndefined();
    expect(c.blob).toEqual({ backend: "fs", dir: "/tmp/s/blobs", signedUrlTtlSeconds: 900 });
    expect(c.queue).toEqual({ backend: "pg", maxAttempts: 5 });
    expect(c.publicUrl).toBe("http://127.0.0.1:8787");
  });

  it("reads the AWS backends", () => {
    const c = loadConfig({
      BLOB_BACKEND: "s3",
      S3_BUCKET: "images",
      QUEUE_BACKEND: "sqs",
      SQS_GENERATION_QUEUE_URL: "https://sqs.test/1/gen",
      SQS_TRAINING_QUEUE_URL: "https://sqs.test/1/train",
      SQS_RESULTS_QUEUE_URL: "https://sqs.test/1/res",
    });
    expect(c.blob.backend).toBe("s3");
    expect(c.queue).toMatchObject({ backend: "sqs", urls: { training: "https://sqs.test/1/train" } });
  });

  it.each([
    [{ PORT: "abc" }, 'PORT must be a number (got "abc")'],
    [{ PORT: "70000" }, 'PORT must be between 1 and 65535 (got "70000")'],
    [{ DATABASE_URL: "mysql://x" }, "DATABASE_URL must be a postgres:// or postgresql:// URL"],
    [{ BLOB_BACKEND: "s3" }, "S3_BUCKET is required when BLOB_BACKEND=s3"],
    [{ QUEUE_BACKEND: "sqs" }, "SQS_GENERATION_QUEUE_URL is required when QUEUE_BACKEND=sqs"],
    [{ SIGNING_SECRET: "short" }, "SIGNING_SECRET must be at least 32 characters"],
    [{ QUEUE_BACKEND: "kafka" }, "QUEUE_BACKEND"],
    [{ INFERENCE_EXECUTION_PROVIDER: "gpu" }, 'INFERENCE_EXECUTION_PROVIDER must be cpu or cuda (got "gpu")'],
  ])("rejects %j with one line naming the variable", (env, message) => {
    let err: unknown;
    try {
      loadConfig(env);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain(message);
    expect((err as Error).message).not.toContain("\n");
  });

  it("reads the inference execution provider: cpu by default, cuda when asked", () => {
    expect(loadConfig({}).inference.executionProvider).toBe("cpu");
    expect(loadConfig({ INFERENCE_EXECUTION_PROVIDER: "cuda" }).inference.executionProvider).toBe("cuda");
    expect(loadConfig({ INFERENCE_EXECUTION_PROVIDER: "cpu" }).inference.executionProvider).toBe("cpu");
  });

  it("requires the signing secret and admin key in prod only where the HTTP API serves", () => {
    const prod = loadConfig({ PREFLOOP_ENV: "prod" });
    expect(() => requireServingSecrets(prod)).toThrow("SIGNING_SECRET is required when PREFLOOP_ENV=prod");
    const signing = "s".repeat(32);
    expect(() =>
      requireServingSecrets(loadConfig({ PREFLOOP_ENV: "prod", SIGNING_SECRET: signing })),
    ).toThrow("ADMIN_API_KEY is required when PREFLOOP_ENV=prod");
    const both = loadConfig({ PREFLOOP_ENV: "prod", SIGNING_SECRET: signing, ADMIN_API_KEY: "a".repeat(32) });
    expect(requireServingSecrets(both)).toBe(both);
    expect(requireServingSecrets(loadConfig({}))).toBeDefined();
  });

  it("never echoes a secret's value", () => {
    expect(() => loadConfig({ ADMIN_API_KEY: "hunter2" })).toThrow(
      /^ADMIN_API_KEY must be at least 32 characters$/,
    );
  });
});

describe("server entry with a bad configuration", () => {
  it("prints one line, no stack trace, and exits non-zero", () => {
    const res = spawnSync(
      join(repoRoot, "node_modules/.bin/tsx"),
      [join(repoRoot, "functions/src/entries/server.ts")],
      { env: { ...process.env, PORT: "not-a-port" }, encoding: "utf8", timeout: 60_000 },
    );
    expect(res.status).toBe(2);
    const lines = res.stderr.trim().split("\n");
    expect(lines).toEqual(['prefloop: configuration error: PORT must be a number (got "not-a-port")']);
    expect(res.stdout).toBe("");
  });
});
