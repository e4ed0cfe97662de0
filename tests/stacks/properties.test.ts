/**
 * Security and reliability properties of the synthesized platform, pinned one by one: encryption,
 * public access, TLS-only access, dead-letter queues and receive counts, visibility timeouts that
 * fit the consumers, least-privilege policies, Lambda sizing, Batch GPU and scale-to-zero, the web
 * distribution, alarms and outputs.
 */
import { Match, type Template } from "aws-cdk-lib/assertions";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../functions/src/config.js";
import { databaseUrlFromSecret } from "../../functions/src/entries/lambda-config.js";
import { entries, objectAccess } from "../../stacks/src/api-stack.js";
import { environments } from "../../stacks/src/config.js";
import { maxReceiveCount, resultsTimeoutSeconds } from "../../stacks/src/queues-stack.js";
import { workerObjectAccess } from "../../stacks/src/training-stack.js";
import { spaFallbackCode, stripApiPrefixCode } from "../../stacks/src/web-stack.js";
import {
  dockerImages,
  fakeWebBuild,
  removeTemporaryFolders,
  type Synthesized,
  synthPlatform,
} from "./harness.js";

// biome-ignore lint/suspicious/noExplicitAny: synthesized CloudFormation is untyped JSON
type Cfn = any;
type Resource = { Type: string; Properties?: Record<string, unknown>; DeletionPolicy?: string };

const dev = environments.dev;
const prod = environments.prod;
let d: Synthesized; // dev, with a web build
let p: Synthesized; // prod, without one

beforeAll(() => {
  d = synthPlatform("dev", { webDist: fakeWebBuild() });
  p = synthPlatform("prod", { webDist: "/nonexistent/web/dist" });
});
afterAll(removeTemporaryFolders);

function all(s: Synthesized): Template[] {
  return Object.values(s.templates);
}
function resources(t: Template, type: string): [string, Resource][] {
  return Object.entries(t.findResources(type)) as [string, Resource][];
}
function props(r: Resource): Record<string, Cfn> {
  return (r.Properties ?? {}) as Record<string, Cfn>;
}
function byLogicalPrefix(t: Template, type: string, prefix: string): Resource {
  const found = resources(t, type).filter(([id]) => id.startsWith(prefix));
  expect(
    found.map(([id]) => id),
    `${type} ${prefix}*`,
  ).toHaveLength(1);
  return (found[0] as [string, Resource])[1];
}
function envOf(fn: Resource): Record<string, unknown> {
  return (props(fn).Environment?.Variables ?? {}) as Record<string, unknown>;
}
/** Every policy statement of every IAM policy and role (inline) in a template. */
function statements(t: Template): { where: string; s: Record<string, Cfn> }[] {
  const out: { where: string; s: Record<string, Cfn> }[] = [];
  for (const [id, r] of resources(t, "AWS::IAM::Policy")) {
    for (const s of props(r).PolicyDocument.Statement) out.push({ where: id, s });
  }
  for (const [id, r] of resources(t, "AWS::IAM::Role")) {
    for (const pol of props(r).Policies ?? [])
      for (const s of pol.PolicyDocument.Statement) out.push({ where: id, s });
  }
  return out;
}
const list = <T>(x: T | T[]): T[] => (Array.isArray(x) ? x : [x]);

describe("buckets", () => {
  it.each(["dev", "prod"] as const)("%s: every bucket is encrypted, private and TLS-only", (env) => {
    const s = env === "dev" ? d : p;
    let count = 0;
    for (const t of all(s)) {
      for (const [id, bucket] of resources(t, "AWS::S3::Bucket")) {
        count++;
        expect(props(bucket).BucketEncryption, id).toEqual({
          ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" } }],
        });
        expect(props(bucket).PublicAccessBlockConfiguration, id).toEqual({
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        });
        const policies = resources(t, "AWS::S3::BucketPolicy").filter(
          ([, pol]) => JSON.stringify(props(pol).Bucket) === JSON.stringify({ Ref: id }),
        );
        expect(policies, `${id} bucket policy`).toHaveLength(1);
        const deny = props((policies[0] as [string, Resource])[1]).PolicyDocument.Statement.find(
          (st: Cfn) => st.Effect === "Deny" && st.Condition?.Bool?.["aws:SecureTransport"] === "false",
        );
        expect(deny, `${id} denies plain HTTP`).toBeDefined();
        expect(deny.Action).toBe("s3:*");
      }
    }
    expect(count).toBe(4); // data + access logs, site + web logs
  });

  it("the data bucket keeps versions and cleans up temporary objects and aborted uploads", () => {
    for (const [s, cfg] of [
      [d, dev],
      [p, prod],
    ] as const) {
      const bucket = byLogicalPrefix(s.templates.data, "AWS::S3::Bucket", "DataBucket");
      expect(props(bucket).VersioningConfiguration).toEqual({ Status: "Enabled" });
      const rules = props(bucket).LifecycleConfiguration.Rules as Record<string, Cfn>[];
      expect(rules).toContainEqual(
        expect.objectContaining({
          Prefix: "tmp/",
          ExpirationInDays: cfg.storage.tempObjectDays,
          Status: "Enabled",
        }),
      );
      expect(rules).toContainEqual(
        expect.objectContaining({
          AbortIncompleteMultipartUpload: { DaysAfterInitiation: cfg.storage.abortIncompleteUploadDays },
        }),
      );
      expect(rules).toContainEqual(
        expect.objectContaining({
          NoncurrentVersionExpiration: { NoncurrentDays: cfg.storage.noncurrentVersionDays },
        }),
      );
      expect(props(bucket).LoggingConfiguration.DestinationBucketName).toBeDefined();
    }
  });

  it("prod keeps buckets when stacks are deleted; dev does not", () => {
    const data = (s: Synthesized) => byLogicalPrefix(s.templates.data, "AWS::S3::Bucket", "DataBucket");
    expect(data(p).DeletionPolicy).toBe("Retain");
    expect(data(d).DeletionPolicy).toBe("Delete");
  });
});

describe("queues", () => {
  const mains = {
    generation: "GenerationQueue",
    training: "TrainingQueue",
    results: "ResultsQueue",
  } as const;

  it("every queue is SSE-encrypted and refuses plain HTTP", () => {
    const t = d.templates.queues;
    const queues = resources(t, "AWS::SQS::Queue");
    expect(queues).toHaveLength(6);
    for (const [id, q] of queues) {
      expect(props(q).SqsManagedSseEnabled, id).toBe(true);
      const policy = resources(t, "AWS::SQS::QueuePolicy").find(([, pol]) =>
        JSON.stringify(props(pol).Queues).includes(`"${id}"`),
      );
      expect(policy, `${id} queue policy`).toBeDefined();
      expect(props((policy as [string, Resource])[1]).PolicyDocument.Statement).toContainEqual(
        expect.objectContaining({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } }),
      );
    }
  });

  it.each(Object.entries(mains))(
    "the %s queue has a dead-letter queue and a fixed receive count",
    (name, prefix) => {
      const q = byLogicalPrefix(d.templates.queues, "AWS::SQS::Queue", prefix);
      const redrive = props(q).RedrivePolicy;
      expect(redrive.maxReceiveCount).toBe(maxReceiveCount[name as keyof typeof mains]);
      expect(redrive.deadLetterTargetArn["Fn::GetAtt"][0]).toMatch(/DeadLetters/);
      const dlq = byLogicalPrefix(
        d.templates.queues,
        "AWS::SQS::Queue",
        prefix.replace("Queue", "DeadLetters"),
      );
      expect(props(dlq).MessageRetentionPeriod).toBe(14 * 24 * 3600);
    },
  );

  it("visibility timeouts fit the consumers", () => {
    for (const [s, cfg] of [
      [d, dev],
      [p, prod],
    ] as const) {
      const vis = (prefix: string) =>
        props(byLogicalPrefix(s.templates.queues, "AWS::SQS::Queue", prefix)).VisibilityTimeout as number;
      const fnTimeout = (prefix: string) =>
        props(byLogicalPrefix(s.templates.api, "AWS::Lambda::Function", prefix)).Timeout as number;
      // SQS event sources: at least six times the function timeout (AWS guidance).
      expect(vis("GenerationQueue")).toBeGreaterThanOrEqual(6 * fnTimeout("Generator"));
      expect(vis("ResultsQueue")).toBeGreaterThanOrEqual(6 * fnTimeout("Results"));
      expect(fnTimeout("Results")).toBe(resultsTimeoutSeconds);
      // The worker keeps a training job invisible for its whole run, Batch timeout included.
      const job = resources(s.templates.training, "AWS::Batch::JobDefinition")[0] as [string, Resource];
      const attempt = props(job[1]).Timeout.AttemptDurationSeconds as number;
      expect(attempt).toBe(cfg.training.jobTimeoutMinutes * 60);
      expect(vis("TrainingQueue")).toBeGreaterThan(attempt);
      expect(vis("TrainingQueue")).toBeLessThanOrEqual(12 * 3600); // SQS maximum
    }
  });
});

describe("database", () => {
  it.each([
    ["dev", dev],
    ["prod", prod],
  ] as const)(
    "%s: Aurora Serverless v2 PostgreSQL, encrypted, backed up, behind a TLS-only proxy",
    (env, cfg) => {
      const t = (env === "dev" ? d : p).templates.data;
      const cluster = resources(t, "AWS::RDS::DBCluster")[0] as [string, Resource];
      const c = props(cluster[1]);
      expect(c.Engine).toBe("aurora-postgresql");
      expect(c.StorageEncrypted).toBe(true);
      expect(c.EnableIAMDatabaseAuthentication).toBe(true);
      expect(c.DeletionProtection).toBe(cfg.database.deletionProtection);
      expect(c.BackupRetentionPeriod).toBe(cfg.database.backupRetentionDays);
      expect(c.ServerlessV2ScalingConfiguration).toEqual({
        MinCapacity: cfg.database.minCapacity,
        MaxCapacity: cfg.database.maxCapacity,
      });
      expect(c.EnableCloudwatchLogsExports).toEqual(["postgresql"]);
      expect(cluster[1].DeletionPolicy).toBe(env === "prod" ? "Snapshot" : "Delete");
      const instances = resources(t, "AWS::RDS::DBInstance");
      expect(instances).toHaveLength(1 + cfg.database.readers);
      for (const [, i] of instances) {
        expect(props(i).DBInstanceClass).toBe("db.serverless");
        expect(props(i).PubliclyAccessible).toBe(false);
      }
      const proxy = resources(t, "AWS::RDS::DBProxy")[0] as [string, Resource];
      expect(props(proxy[1]).RequireTLS).toBe(true);
      expect(props(proxy[1]).EngineFamily).toBe("POSTGRESQL");
      // The admin secret rotates, from subnets that can reach Secrets Manager.
      expect(resources(t, "AWS::SecretsManager::RotationSchedule")).toHaveLength(1);
      const rotation = props((resources(t, "AWS::Serverless::Application")[0] as [string, Resource])[1]);
      expect(JSON.stringify(rotation.Parameters.vpcSubnetIds)).toMatch(/Vpcapp/);
      expect(JSON.stringify(rotation.Parameters.vpcSubnetIds)).not.toMatch(/Vpcdb/);
    },
  );

  it("only the app security group reaches the proxy, on 5432", () => {
    const t = d.templates.data;
    const ingress = resources(t, "AWS::EC2::SecurityGroupIngress").map(([, r]) => props(r));
    const toProxy = ingress.filter((r) => JSON.stringify(r.GroupId).includes("ProxyProxySecurityGroup"));
    expect(toProxy).toHaveLength(1);
    expect(toProxy[0]).toMatchObject({ FromPort: 5432, ToPort: 5432, IpProtocol: "tcp" });
    expect(JSON.stringify(toProxy[0]?.SourceSecurityGroupId)).toContain("AppSecurityGroup");
    for (const [, sg] of resources(t, "AWS::EC2::SecurityGroup")) {
      for (const rule of props(sg).SecurityGroupIngress ?? []) expect(rule.CidrIp).not.toBe("0.0.0.0/0");
    }
  });

  it("the VPC logs rejected traffic", () => {
    d.templates.data.hasResourceProperties("AWS::EC2::FlowLog", { TrafficType: "REJECT" });
  });
});

describe("functions", () => {
  const names = {
    http: "Http",
    generator: "Generator",
    results: "Results",
    scheduler: "Scheduler",
    migrate: "Migrate",
  };

  it("builds one Lambda per runtime entry, all in the VPC with JSON logs", () => {
    const t = d.templates.api;
    for (const prefix of Object.values(names)) {
      const fn = props(byLogicalPrefix(t, "AWS::Lambda::Function", prefix));
      expect(fn.VpcConfig.SubnetIds.length, prefix).toBeGreaterThan(0);
      expect(fn.LoggingConfig, prefix).toMatchObject({ LogFormat: "JSON", ApplicationLogLevel: "INFO" });
      expect(fn.LoggingConfig.LogGroup, prefix).toBeDefined();
    }
    expect(Object.keys(entries).sort()).toEqual(Object.keys(names).sort());
  });

  it("sizes the functions from the environment's config", () => {
    for (const [s, cfg] of [
      [d, dev],
      [p, prod],
    ] as const) {
      const fn = (prefix: string) => props(byLogicalPrefix(s.templates.api, "AWS::Lambda::Function", prefix));
      expect(fn("Http")).toMatchObject({ MemorySize: cfg.api.memoryMb, Timeout: cfg.api.timeoutSeconds });
      expect(fn("Http").Timeout).toBeLessThanOrEqual(29); // API Gateway's integration limit
      expect(fn("Generator")).toMatchObject({
        MemorySize: cfg.generator.memoryMb,
        Timeout: cfg.generator.timeoutSeconds,
        EphemeralStorage: { Size: cfg.generator.ephemeralStorageMb },
      });
      for (const prefix of ["Results", "Scheduler", "Migrate"]) {
        expect(fn(prefix).MemorySize, prefix).toBeGreaterThanOrEqual(256);
        expect(fn(prefix).Timeout, prefix).toBeLessThanOrEqual(300);
      }
    }
  });

  it("zip functions run on the newest Node runtime; the generator is a container image", () => {
    const t = d.templates.api;
    for (const prefix of ["Http", "Results", "Scheduler", "Migrate"]) {
      expect(props(byLogicalPrefix(t, "AWS::Lambda::Function", prefix)).Runtime, prefix).toBe("nodejs24.x");
    }
    const generator = props(byLogicalPrefix(t, "AWS::Lambda::Function", "Generator"));
    expect(generator.PackageType).toBe("Image");
    expect(generator.Architectures).toEqual(["x86_64"]);
    expect(dockerImages(d, "api")).toEqual([
      { dockerFile: "functions/Dockerfile.generator", platform: "linux/amd64" },
    ]);
  });

  it("passes configuration by name and secrets only by ARN", () => {
    const t = d.templates.api;
    const http = envOf(byLogicalPrefix(t, "AWS::Lambda::Function", "Http"));
    expect(Object.keys(http).sort()).toEqual(
      [
        "ADMIN_API_KEY_SECRET_ARN",
        "BLOB_BACKEND",
        "DB_PROXY_ENDPOINT",
        "DB_SECRET_ARN",
        "LOG_LEVEL",
        "NODE_OPTIONS",
        "PREFLOOP_ENV",
        "QUEUE_BACKEND",
        "S3_BUCKET",
        "SIGNING_SECRET_ARN",
        "SQS_GENERATION_QUEUE_URL",
        "SQS_RESULTS_QUEUE_URL",
        "SQS_TRAINING_QUEUE_URL",
        "STATE_DIR",
      ].sort(),
    );
    expect(http).toMatchObject({
      PREFLOOP_ENV: "dev",
      BLOB_BACKEND: "s3",
      QUEUE_BACKEND: "sqs",
      STATE_DIR: "/tmp/prefloop", // the only writable folder in Lambda
    });
    for (const [, fn] of resources(t, "AWS::Lambda::Function")) {
      const env = envOf(fn);
      for (const forbidden of ["DATABASE_URL", "SIGNING_SECRET", "ADMIN_API_KEY"])
        expect(env[forbidden]).toBeUndefined();
    }
    const scheduler = envOf(byLogicalPrefix(t, "AWS::Lambda::Function", "Scheduler"));
    expect(Object.keys(scheduler)).toEqual(
      expect.arrayContaining(["BATCH_JOB_QUEUE_ARN", "BATCH_JOB_DEFINITION_ARN"]),
    );
    expect(envOf(byLogicalPrefix(t, "AWS::Lambda::Function", "Generator"))).toMatchObject({
      MODEL_DIR: `blob:${dev.generator.modelPrefix}`,
      INFERENCE_WORKERS: "0",
      INFERENCE_THREADS: "6",
    });
    expect(envOf(byLogicalPrefix(t, "AWS::Lambda::Function", "Migrate")).PREFLOOP_MIGRATIONS_DIR).toBe(
      "/var/task/migrations",
    );
  });

  it("with the Lambda generator there is no GPU generator: no generator stack, no ECS anywhere", () => {
    for (const s of [d, p]) {
      expect(s.platform.generator).toBeUndefined();
      expect(s.assembly.stacks.map((st) => st.stackName).some((n) => n.endsWith("-generator"))).toBe(false);
      for (const t of all(s)) {
        expect(t.findResources("AWS::ECS::Service")).toEqual({});
        expect(t.findResources("AWS::ECS::TaskDefinition")).toEqual({});
      }
    }
  });

  it("consumes the generation and results queues with partial batch failures", () => {
    const t = d.templates.api;
    const mappings = resources(t, "AWS::Lambda::EventSourceMapping").map(([, r]) => props(r));
    expect(mappings).toHaveLength(2);
    for (const m of mappings) expect(m.FunctionResponseTypes).toEqual(["ReportBatchItemFailures"]);
    const generator = mappings.find((m) => JSON.stringify(m.FunctionName).includes("Generator"));
    expect(generator).toMatchObject({
      BatchSize: dev.generator.batchSize,
      ScalingConfig: { MaximumConcurrency: dev.generator.maxConcurrency },
    });
  });

  it("runs migrations on deploy before the new code serves traffic", () => {
    const t = d.templates.api;
    const trigger = resources(t, "Custom::Trigger");
    expect(trigger).toHaveLength(1);
    const [triggerId, triggerResource] = trigger[0] as [string, Resource];
    expect(JSON.stringify(props(triggerResource).HandlerArn)).toContain("Migrate");
    expect(props(triggerResource).ExecuteOnHandlerChange).toBe(true);
    const http = byLogicalPrefix(t, "AWS::Lambda::Function", "Http") as Resource & { DependsOn?: string[] };
    expect(http.DependsOn).toContain(triggerId);
  });

  it("EventBridge Scheduler invokes the scheduler function on the configured rate", () => {
    const t = d.templates.api;
    t.hasResourceProperties("AWS::Scheduler::Schedule", {
      ScheduleExpression: `rate(${dev.scheduler.everyMinutes} minutes)`,
      State: "ENABLED",
      Target: Match.objectLike({ Arn: { "Fn::GetAtt": [Match.stringLikeRegexp("^Scheduler"), "Arn"] } }),
    });
  });
});

describe("the functions' configuration contract (functions/src/config.ts)", () => {
  const functionNames = ["Http", "Generator", "Results", "Scheduler", "Migrate"];

  /** A function's environment as Lambda would see it, tokens replaced, secrets resolved by ARN. */
  function runtimeEnv(s: Synthesized, prefix: string): Record<string, string> {
    const fn = byLogicalPrefix(s.templates.api, "AWS::Lambda::Function", prefix);
    const env: Record<string, string> = { AWS_REGION: "eu-west-1" };
    for (const [name, value] of Object.entries(envOf(fn))) {
      if (typeof value === "string") env[name] = value;
      else if (name.startsWith("SQS_"))
        env[name] = `https://sqs.eu-west-1.amazonaws.com/123456789012/${name}`;
      else if (name === "S3_BUCKET") env[name] = "prefloop-data-123456789012-eu-west-1";
      else env[name] = `resolved-${name.toLowerCase()}`;
    }
    // What entries/lambda-config.ts does with the ARNs at cold start.
    if (env.SIGNING_SECRET_ARN) env.SIGNING_SECRET = "s".repeat(64);
    if (env.ADMIN_API_KEY_SECRET_ARN) env.ADMIN_API_KEY = "a".repeat(48);
    if (env.DB_SECRET_ARN && env.DB_PROXY_ENDPOINT) {
      const secret = { username: "prefloop_admin", password: "p@ss/word", dbname: "prefloop", port: 5432 };
      env.DATABASE_URL = databaseUrlFromSecret(JSON.stringify(secret), env.DB_PROXY_ENDPOINT);
    }
    return env;
  }

  it.each(functionNames)(
    "dev: the %s function's environment is a valid S3 + SQS + PostgreSQL config",
    (name) => {
      const config = loadConfig(runtimeEnv(d, name));
      expect(config.env).toBe("dev");
      expect(config.blob.backend).toBe("s3");
      expect(config.queue.backend).toBe("sqs");
      expect(config.databaseUrl).toMatch(
        /^postgresql:\/\/prefloop_admin:.*@resolved-db_proxy_endpoint:5432\/prefloop/,
      );
      expect(config.stateDir).toBe("/tmp/prefloop");
    },
  );

  it("prod: the HTTP function gets both app secrets", () => {
    const config = loadConfig(runtimeEnv(p, "Http"));
    expect(config.signingSecret).toBeDefined();
    expect(config.adminApiKey).toBeDefined();
  });

  // Only the HTTP function may read the app secrets (least privilege); the others must start without them.
  it.each(["Generator", "Results", "Scheduler", "Migrate"])(
    "prod: the %s function's environment is a valid config without the HTTP-only secrets",
    (name) => {
      expect(() => loadConfig(runtimeEnv(p, name))).not.toThrow();
    },
  );
});

describe("least privilege", () => {
  /** The only statements allowed on Resource "*", each because the action has no resource scope. */
  const starActions = new Set([
    "batch:ListJobs",
    "batch:DescribeJobs",
    "ecr:GetAuthorizationToken",
    "cloudfront:CreateInvalidation",
    "cloudfront:GetInvalidation",
    // kms key policies name the key itself as "*"
    "kms:*",
    "kms:Decrypt",
    "kms:GenerateDataKey",
  ]);

  it.each(["dev", "prod"] as const)(
    "%s: no '*' action and '*' resources only where no scope exists",
    (env) => {
      const s = env === "dev" ? d : p;
      for (const t of all(s)) {
        for (const { where, s: st } of statements(t)) {
          if (st.Effect !== "Allow") continue;
          for (const action of list(st.Action)) expect(action, where).not.toMatch(/^(\*|[a-z0-9]+:\*)$/);
          if (list(st.Resource).includes("*")) {
            for (const action of list(st.Action))
              expect(starActions.has(action), `${where} ${action} on *`).toBe(true);
          }
        }
      }
    },
  );

  it("S3 object access is limited to the key prefixes each principal needs", () => {
    const prefixesOf = (t: Template, rolePrefix: string, action: string) => {
      const found = new Set<string>();
      for (const { where, s: st } of statements(t)) {
        if (!where.startsWith(rolePrefix) || !list(st.Action).includes(action)) continue;
        for (const r of list(st.Resource)) {
          const joined = JSON.stringify(r);
          const m = /prefloop-dev-data-.*?\/([a-z]+\/)\*/.exec(joined.replaceAll('"', ""));
          expect(m, `${where} ${action} ${joined}`).not.toBeNull();
          found.add((m as RegExpExecArray)[1] as string);
        }
      }
      return [...found].sort();
    };
    const api = d.templates.api;
    const sorted = (xs: readonly string[]) => [...new Set(xs)].sort();
    expect(prefixesOf(api, "HttpServiceRole", "s3:GetObject")).toEqual(
      sorted([...objectAccess.http.read, ...objectAccess.http.write]),
    );
    expect(prefixesOf(api, "HttpServiceRole", "s3:PutObject")).toEqual(sorted(objectAccess.http.write));
    expect(prefixesOf(api, "HttpServiceRole", "s3:DeleteObject")).toEqual(sorted(objectAccess.http.delete));
    expect(prefixesOf(api, "GeneratorServiceRole", "s3:PutObject")).toEqual(
      sorted(objectAccess.generator.write),
    );
    expect(prefixesOf(api, "ResultsServiceRole", "s3:PutObject")).toEqual([]);
    expect(prefixesOf(api, "MigrateServiceRole", "s3:GetObject")).toEqual([]);
    const training = d.templates.training;
    expect(prefixesOf(training, "WorkerJobRole", "s3:PutObject")).toEqual(sorted(workerObjectAccess.write));
    expect(prefixesOf(training, "WorkerJobRole", "s3:GetObject")).toEqual(
      sorted([...workerObjectAccess.read, ...workerObjectAccess.write]),
    );
  });

  it("secrets are readable only by the functions that use them", () => {
    const api = d.templates.api;
    const readers = (secretPrefix: string) =>
      statements(api)
        .filter(({ s: st }) => list(st.Action).includes("secretsmanager:GetSecretValue"))
        .filter(({ s: st }) => JSON.stringify(st.Resource).includes(secretPrefix))
        .map(({ where }) => where.replace(/ServiceRole.*/, ""));
    expect(readers("SigningSecret")).toEqual(["Http"]);
    expect(readers("AdminApiKey")).toEqual(["Http"]);
  });

  it("queue permissions follow the code paths: send, consume, and read statistics", () => {
    const sqsActionsOf = (rolePrefix: string) => {
      const out: Record<string, string[]> = {};
      for (const { where, s: st } of statements(d.templates.api)) {
        if (!where.startsWith(rolePrefix)) continue;
        for (const r of list(st.Resource)) {
          const m = /(Generation|Training|Results)(Queue|DeadLetters)/.exec(JSON.stringify(r));
          if (!m) continue;
          const key = `${m[1]}${m[2]}`;
          out[key] = [...new Set([...(out[key] ?? []), ...list(st.Action as string | string[])])].sort();
        }
      }
      return out;
    };
    const send = ["sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"];
    const inspect = ["sqs:GetQueueAttributes", "sqs:GetQueueUrl"];
    expect(sqsActionsOf("HttpServiceRole")).toEqual({
      GenerationQueue: send,
      TrainingQueue: send,
      GenerationDeadLetters: inspect,
      TrainingDeadLetters: inspect,
      ResultsDeadLetters: inspect,
    });
    expect(sqsActionsOf("SchedulerServiceRole")).toEqual({
      GenerationQueue: send,
      TrainingQueue: send,
      GenerationDeadLetters: inspect,
      TrainingDeadLetters: inspect,
    });
    expect(Object.keys(sqsActionsOf("GeneratorServiceRole"))).toEqual(["GenerationQueue"]);
    expect(sqsActionsOf("GeneratorServiceRole").GenerationQueue).toContain("sqs:ReceiveMessage");
    expect(Object.keys(sqsActionsOf("ResultsServiceRole")).sort()).toEqual([
      "GenerationQueue",
      "ResultsQueue",
    ]);
    expect(sqsActionsOf("MigrateServiceRole")).toEqual({});
  });

  it("the scheduler may submit jobs only to the GPU job queue and definition", () => {
    const submit = statements(d.templates.api).filter(({ s: st }) =>
      list(st.Action).includes("batch:SubmitJob"),
    );
    expect(submit).toHaveLength(1);
    expect(submit[0]?.where).toMatch(/^Scheduler/);
    const resourcesJson = JSON.stringify(submit[0]?.s.Resource);
    expect(list(submit[0]?.s.Resource)).toHaveLength(2);
    expect(resourcesJson).toMatch(/GpuJobQueue/);
    expect(resourcesJson).toMatch(/WorkerJob/);
  });
});

describe("GPU worker on AWS Batch", () => {
  it.each([
    ["dev", dev],
    ["prod", prod],
  ] as const)("%s: GPU instances that scale to zero", (env, cfg) => {
    const t = (env === "dev" ? d : p).templates.training;
    const ce = props((resources(t, "AWS::Batch::ComputeEnvironment")[0] as [string, Resource])[1]);
    expect(ce.Type).toBe("managed");
    expect(ce.ComputeResources).toMatchObject({
      MinvCpus: 0,
      MaxvCpus: cfg.training.maxvCpus,
      InstanceTypes: [...cfg.training.instanceTypes],
      Ec2Configuration: [{ ImageType: "ECS_AL2023_NVIDIA" }],
      Type: cfg.training.spot ? "SPOT" : "EC2",
    });
    for (const type of ce.ComputeResources.InstanceTypes as string[])
      expect(type).toMatch(/^(g4dn|g5|g6|g6e|p3|p4d|p5)\./);
    const job = props((resources(t, "AWS::Batch::JobDefinition")[0] as [string, Resource])[1]);
    expect(job.ContainerProperties.ResourceRequirements).toEqual(
      expect.arrayContaining([
        { Type: "GPU", Value: String(cfg.training.gpus) },
        { Type: "VCPU", Value: String(cfg.training.vcpus) },
        { Type: "MEMORY", Value: String(cfg.training.memoryMib) },
      ]),
    );
    expect(job.ContainerProperties.Command).toEqual(["serve"]);
    expect(job.ContainerProperties.LogConfiguration.LogDriver).toBe("awslogs");
    expect(job.RetryStrategy.EvaluateOnExit[0]).toMatchObject({
      Action: "RETRY",
      OnStatusReason: "Host EC2*",
    });
  });

  it("instances have encrypted root volumes and require IMDSv2", () => {
    d.templates.training.hasResourceProperties("AWS::EC2::LaunchTemplate", {
      LaunchTemplateData: Match.objectLike({
        MetadataOptions: Match.objectLike({ HttpTokens: "required" }),
        BlockDeviceMappings: [Match.objectLike({ Ebs: Match.objectLike({ Encrypted: true }) })],
      }),
    });
  });

  it("the worker image is built from gpu-worker/Dockerfile", () => {
    expect(dockerImages(d, "training")).toEqual([
      { dockerFile: "gpu-worker/Dockerfile", platform: "linux/amd64" },
    ]);
  });
});

describe("web", () => {
  it("serves the site bucket through CloudFront with origin access control", () => {
    const t = d.templates.web;
    const dist = props(
      (resources(t, "AWS::CloudFront::Distribution")[0] as [string, Resource])[1],
    ).DistributionConfig;
    const s3Origin = dist.Origins.find((o: Cfn) => o.S3OriginConfig);
    expect(s3Origin.OriginAccessControlId).toBeDefined();
    expect(s3Origin.S3OriginConfig.OriginAccessIdentity).toBe("");
    t.hasResourceProperties("AWS::CloudFront::OriginAccessControl", {
      OriginAccessControlConfig: Match.objectLike({
        OriginAccessControlOriginType: "s3",
        SigningBehavior: "always",
      }),
    });
    expect(dist.DefaultCacheBehavior.ViewerProtocolPolicy).toBe("redirect-to-https");
    expect(dist.Logging.Bucket).toBeDefined();
    t.hasResourceProperties("AWS::S3::BucketPolicy", {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: "s3:GetObject",
            Principal: { Service: "cloudfront.amazonaws.com" },
            Condition: Match.objectLike({ StringEquals: Match.anyValue() }),
          }),
        ]),
      },
    });
  });

  it("routes /api/* to the HTTP API, uncached, with the /api prefix removed", () => {
    const t = d.templates.web;
    const dist = props(
      (resources(t, "AWS::CloudFront::Distribution")[0] as [string, Resource])[1],
    ).DistributionConfig;
    const api = dist.CacheBehaviors.find((b: Cfn) => b.PathPattern === "/api/*");
    expect(api).toBeDefined();
    expect(api.AllowedMethods).toEqual(expect.arrayContaining(["GET", "POST", "PUT", "DELETE", "PATCH"]));
    expect(api.CachePolicyId).toBe("4135ea2d-6df8-44a3-9df3-4b5a84be39ad"); // CachingDisabled
    expect(api.FunctionAssociations).toHaveLength(1);
    const origin = dist.Origins.find((o: Cfn) => o.Id === api.TargetOriginId);
    expect(JSON.stringify(origin.DomainName)).toContain("execute-api");
    expect(origin.CustomOriginConfig.OriginProtocolPolicy).toBe("https-only");
  });

  it("the CloudFront functions rewrite paths as intended", () => {
    const run = (code: string, uri: string) =>
      (new Function(`${code}; return handler;`)() as (e: unknown) => { uri: string })({ request: { uri } })
        .uri;
    expect(run(stripApiPrefixCode, "/api/pairs")).toBe("/pairs");
    expect(run(stripApiPrefixCode, "/api")).toBe("/");
    expect(run(stripApiPrefixCode, "/api/")).toBe("/");
    expect(run(stripApiPrefixCode, "/apiary/x")).toBe("/apiary/x");
    expect(run(spaFallbackCode, "/experiments/42")).toBe("/index.html");
    expect(run(spaFallbackCode, "/admin")).toBe("/admin.html");
    expect(run(spaFallbackCode, "/admin/experiments/exp_1")).toBe("/admin.html");
    expect(run(spaFallbackCode, "/administrator")).toBe("/index.html");
    expect(run(spaFallbackCode, "/assets/app.js")).toBe("/assets/app.js");
  });

  it("deploys the web build only when there is one", () => {
    expect(d.templates.web.findResources("Custom::CDKBucketDeployment")).not.toEqual({});
    expect(p.templates.web.findResources("Custom::CDKBucketDeployment")).toEqual({});
    const warnings = p.assembly
      .getStackArtifact(p.platform.web.artifactId)
      .messages.map((m) => String(m.entry.data));
    expect(warnings.some((w) => w.includes("No web build"))).toBe(true);
  });

  it("prints the API URL and where the admin key is", () => {
    d.templates.api.hasOutput("ApiUrl", {});
    d.templates.api.hasOutput("AdminApiKeySecretArn", {
      Value: { Ref: Match.stringLikeRegexp("^AdminApiKey") },
    });
  });

  it("prints the site URL", () => {
    d.templates.web.hasOutput("SiteUrl", {
      Value: { "Fn::Join": ["", ["https://", { "Fn::GetAtt": [Match.anyValue(), "DomainName"] }]] },
    });
  });
});

describe("operations", () => {
  it("alarms on dead letters, error rates and the oldest training job, into an encrypted topic", () => {
    const t = d.templates.operations;
    const alarms: Record<string, Cfn>[] = resources(t, "AWS::CloudWatch::Alarm").map(([id, r]) => ({
      id,
      ...props(r),
    }));
    const dlq = alarms.filter((a) => a.MetricName === "ApproximateNumberOfMessagesVisible");
    expect(dlq).toHaveLength(3);
    for (const a of dlq)
      expect(a).toMatchObject({ Threshold: 1, ComparisonOperator: "GreaterThanOrEqualToThreshold" });
    const errorRates = alarms.filter((a) => a.id.includes("ErrorRate"));
    expect(errorRates).toHaveLength(6); // five functions + the HTTP API
    for (const a of errorRates) expect(a.Threshold).toBe(dev.monitoring.errorRatePercent);
    const oldest = alarms.find((a) => a.id.startsWith("OldestTrainingJobAge"));
    expect(oldest).toMatchObject({
      MetricName: "ApproximateAgeOfOldestMessage",
      Threshold: dev.monitoring.oldestTrainingJobMinutes * 60,
    });
    for (const a of alarms) {
      expect(a.AlarmActions, a.id).toHaveLength(1);
      expect(a.TreatMissingData, a.id).toBe("notBreaching");
    }
    t.hasResourceProperties("AWS::SNS::Topic", { KmsMasterKeyId: Match.anyValue() });
    t.hasResourceProperties("AWS::KMS::Key", { EnableKeyRotation: true });
  });

  it("every log group has a retention", () => {
    for (const [s, cfg] of [
      [d, dev],
      [p, prod],
    ] as const) {
      for (const t of all(s)) {
        for (const [id, lg] of resources(t, "AWS::Logs::LogGroup")) {
          expect(props(lg).RetentionInDays, id).toBe(cfg.monitoring.logRetentionDays);
        }
      }
    }
  });

  it("the HTTP API writes JSON access logs and is throttled", () => {
    const stage = props((resources(d.templates.api, "AWS::ApiGatewayV2::Stage")[0] as [string, Resource])[1]);
    expect(stage.StageName).toBe("$default");
    expect(JSON.parse(stage.AccessLogSettings.Format)).toMatchObject({ requestId: "$context.requestId" });
    expect(stage.DefaultRouteSettings).toMatchObject({
      ThrottlingRateLimit: dev.api.rateLimit,
      ThrottlingBurstLimit: dev.api.burstLimit,
    });
  });
});
