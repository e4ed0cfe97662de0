/**
 * API: the Lambda functions built from the thin entries in functions/src/entries, the HTTP API in
 * front of the Hono app, the SQS consumers, the scheduler, migrations on deploy and the app secrets.
 */
import * as path from "node:path";
import { Duration, IgnoreMode, RemovalPolicy, Size, Stack, type StackProps, Validations } from "aws-cdk-lib";
import * as apigw from "aws-cdk-lib/aws-apigateway";
import * as apigwv2 from "aws-cdk-lib/aws-apigatewayv2";
import { HttpLambdaIntegration } from "aws-cdk-lib/aws-apigatewayv2-integrations";
import type * as batch from "aws-cdk-lib/aws-batch";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import * as ecrAssets from "aws-cdk-lib/aws-ecr-assets";
import * as iam from "aws-cdk-lib/aws-iam";
import * as lambda from "aws-cdk-lib/aws-lambda";
import { SqsEventSource } from "aws-cdk-lib/aws-lambda-event-sources";
import * as nodejs from "aws-cdk-lib/aws-lambda-nodejs";
import * as logs from "aws-cdk-lib/aws-logs";
import type * as rds from "aws-cdk-lib/aws-rds";
import * as s3 from "aws-cdk-lib/aws-s3";
import * as scheduler from "aws-cdk-lib/aws-scheduler";
import * as schedulerTargets from "aws-cdk-lib/aws-scheduler-targets";
import * as secretsmanager from "aws-cdk-lib/aws-secretsmanager";
import type * as sqs from "aws-cdk-lib/aws-sqs";
import * as triggers from "aws-cdk-lib/triggers";
import type { Construct } from "constructs";
import type { PlatformConfig } from "./config.js";
import { dataBucketArnInFindings, dataBucketName } from "./data-stack.js";
import { grantObjects, type ObjectAccess } from "./grants.js";
import { resultsTimeoutSeconds } from "./queues-stack.js";
import { runtimeEnvironment } from "./runtime-env.js";

export interface ApiStackProps extends StackProps {
  readonly config: PlatformConfig;
  readonly repoRoot: string;
  readonly vpc: ec2.IVpc;
  readonly appSecurityGroup: ec2.ISecurityGroup;
  readonly databaseSecret: secretsmanager.ISecret;
  readonly databaseProxy: rds.IDatabaseProxy;
  /** Dead-letter queues, for the queue statistics the HTTP API and the scheduler read. */
  readonly deadLetterQueues: {
    readonly generation: sqs.IQueue;
    readonly training: sqs.IQueue;
    readonly results: sqs.IQueue;
  };
  readonly queues: {
    readonly generation: sqs.IQueue;
    readonly training: sqs.IQueue;
    readonly results: sqs.IQueue;
  };
  readonly gpuWorker: { readonly jobQueue: batch.IJobQueue; readonly jobDefinition: batch.IJobDefinition };
}

/** What each function may do in the data bucket (key prefixes). */
export const objectAccess = {
  http: { read: ["images/", "adapters/", "datasets/"], write: ["datasets/", "tmp/"], delete: ["tmp/"] },
  generator: { read: ["models/", "adapters/"], write: ["images/", "tmp/"] },
  results: { read: ["adapters/"] },
  scheduler: { read: ["images/"], write: ["datasets/"] },
} as const satisfies Record<string, ObjectAccess>;

/** The entries (relative to functions/src/entries) each function is built from. */
export const entries = {
  http: "lambda-http.ts",
  generator: "lambda-generator.ts",
  results: "lambda-results.ts",
  scheduler: "lambda-scheduler.ts",
  migrate: "lambda-migrate.ts",
} as const;

export class ApiStack extends Stack {
  readonly httpApi: apigwv2.HttpApi;
  readonly functions: {
    readonly http: lambda.Function;
    /** Only where the environment renders on Lambda (`generator.kind`); else generator-gpu-stack.ts. */
    readonly generator?: lambda.Function;
    readonly results: lambda.Function;
    readonly scheduler: lambda.Function;
    readonly migrate: lambda.Function;
  };
  readonly signingSecret: secretsmanager.Secret;
  readonly adminApiKeySecret: secretsmanager.Secret;

  constructor(scope: Construct, id: string, props: ApiStackProps) {
    super(scope, id, props);
    const { config, queues, repoRoot } = props;
    // By its fixed name, so that policies can name exact key prefixes (see dataBucketName).
    const dataBucket = s3.Bucket.fromBucketName(this, "DataBucket", dataBucketName(config));
    const entry = (file: string) => path.join(props.repoRoot, "functions", "src", "entries", file);

    this.signingSecret = new secretsmanager.Secret(this, "SigningSecret", {
      description: "prefloop HMAC key for vote tokens and voter cookies",
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
    });
    this.adminApiKeySecret = new secretsmanager.Secret(this, "AdminApiKey", {
      description: "prefloop admin API key (adapters, experiments, training)",
      generateSecretString: { passwordLength: 48, excludePunctuation: true },
    });
    for (const secret of [this.signingSecret, this.adminApiKeySecret]) {
      Validations.of(secret).acknowledge({
        id: "AwsSolutions-SMG4",
        reason:
          "Application key without a rotation Lambda: rotating it would invalidate outstanding vote tokens / admin clients; rotate manually with `aws secretsmanager put-secret-value` (documented in stacks/README.md).",
      });
    }

    // Settings every function gets (runtime-env.ts).
    const common = runtimeEnvironment(config, {
      bucketName: dataBucket.bucketName,
      queues,
      databaseSecret: props.databaseSecret,
      databaseProxy: props.databaseProxy,
    });
    const inVpc = {
      vpc: props.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      securityGroups: [props.appSecurityGroup],
    };
    const logGroup = (name: string) =>
      new logs.LogGroup(this, `${name}Logs`, {
        retention: config.monitoring.logRetentionDays,
        removalPolicy: RemovalPolicy.DESTROY,
      });
    const logging = (name: string) => ({
      logGroup: logGroup(name),
      loggingFormat: lambda.LoggingFormat.JSON,
      applicationLogLevelV2: lambda.ApplicationLogLevel.INFO,
      systemLogLevelV2: lambda.SystemLogLevel.WARN,
    });
    const node = (name: string, file: string, fnProps: Partial<nodejs.NodejsFunctionProps>) =>
      withManagedPolicyAcks(
        new nodejs.NodejsFunction(this, name, {
          entry: entry(file),
          handler: "handler",
          runtime: lambda.Runtime.NODEJS_24_X,
          architecture: lambda.Architecture.ARM_64,
          projectRoot: repoRoot,
          depsLockFilePath: path.join(repoRoot, "package-lock.json"),
          ...inVpc,
          ...logging(name),
          ...fnProps,
          bundling: bundlingOptions(fnProps.bundling),
        }),
      );

    const http = node("Http", entries.http, {
      description: "prefloop HTTP API (Hono)",
      memorySize: config.api.memoryMb,
      timeout: Duration.seconds(config.api.timeoutSeconds),
      environment: {
        ...common,
        SIGNING_SECRET_ARN: this.signingSecret.secretArn,
        ADMIN_API_KEY_SECRET_ARN: this.adminApiKeySecret.secretArn,
      },
    });

    // The generation queue's consumer, where the environment renders on Lambda; with
    // generator.kind "ecs-gpu" the GPU service (generator-gpu-stack.ts) consumes it instead.
    const generator =
      config.generator.kind === "lambda"
        ? withManagedPolicyAcks(
            new lambda.DockerImageFunction(this, "Generator", {
              description: "prefloop generation jobs: onnxruntime-node SD pipeline + sharp",
              code: lambda.DockerImageCode.fromImageAsset(repoRoot, {
                file: "functions/Dockerfile.generator",
                platform: ecrAssets.Platform.LINUX_AMD64,
                ignoreMode: IgnoreMode.DOCKER,
                exclude: generatorImageExcludes,
              }),
              architecture: lambda.Architecture.X86_64,
              memorySize: config.generator.memoryMb,
              ephemeralStorageSize: Size.mebibytes(config.generator.ephemeralStorageMb),
              timeout: Duration.seconds(config.generator.timeoutSeconds),
              environment: {
                ...common,
                // The exported base model, copied from the data bucket into STATE_DIR once per cold start.
                MODEL_DIR: `blob:${config.generator.modelPrefix}`,
                // One request at a time per container; onnxruntime uses the function's vCPUs.
                INFERENCE_WORKERS: "0",
                INFERENCE_THREADS: String(inferenceThreads(config.generator.memoryMb)),
              },
              ...inVpc,
              ...logging("Generator"),
            }),
          )
        : undefined;

    const results = node("Results", entries.results, {
      description: "prefloop training results: register adapters, start experiments",
      memorySize: 512,
      timeout: Duration.seconds(resultsTimeoutSeconds),
      environment: common,
    });

    const schedulerFn = node("Scheduler", entries.scheduler, {
      description: "prefloop scheduler: top up pair pools, enqueue training, start the GPU worker",
      memorySize: 512,
      timeout: Duration.minutes(2),
      environment: {
        ...common,
        BATCH_JOB_QUEUE_ARN: props.gpuWorker.jobQueue.jobQueueArn,
        BATCH_JOB_DEFINITION_ARN: props.gpuWorker.jobDefinition.jobDefinitionArn,
      },
    });

    const migrate = node("Migrate", entries.migrate, {
      description: "prefloop database migrations (run on every deploy)",
      memorySize: 512,
      timeout: Duration.minutes(5),
      environment: { ...common, PREFLOOP_MIGRATIONS_DIR: "/var/task/migrations" },
      bundling: {
        commandHooks: {
          beforeBundling: () => [],
          beforeInstall: () => [],
          afterBundling: (inputDir: string, outputDir: string) => [
            `cp -r "${path.join(inputDir, "migrations")}" "${path.join(outputDir, "migrations")}"`,
          ],
        },
      },
    });

    this.functions = { http, ...(generator ? { generator } : {}), results, scheduler: schedulerFn, migrate };

    // ---- permissions: each function gets what its entry does, nothing more
    for (const fn of Object.values(this.functions)) props.databaseSecret.grantRead(fn);
    this.signingSecret.grantRead(http);
    this.adminApiKeySecret.grantRead(http);
    const objects = (fn: lambda.Function, access: ObjectAccess, who: string) =>
      grantObjects(fn, dataBucket, access, {
        acknowledgeOn: fn,
        bucketArnInFindings: dataBucketArnInFindings(config),
        who,
      });
    objects(http, objectAccess.http, "The HTTP API (pair images, adapter downloads, dataset exports)");
    if (generator) {
      objects(
        generator,
        objectAccess.generator,
        "The generator (base model files, adapters, generated images)",
      );
    }
    objects(results, objectAccess.results, "The results consumer (adapter manifests)");
    objects(schedulerFn, objectAccess.scheduler, "The scheduler (dataset snapshots for training jobs)");
    // Queue statistics (queue.stats) read the dead-letter queue's depth too.
    const inspect = (queue: sqs.IQueue, fn: lambda.Function) =>
      queue.grant(fn, "sqs:GetQueueAttributes", "sqs:GetQueueUrl");
    for (const dlq of Object.values(props.deadLetterQueues)) inspect(dlq, http);
    inspect(props.deadLetterQueues.training, schedulerFn);
    inspect(props.deadLetterQueues.generation, schedulerFn);
    queues.generation.grantSendMessages(http);
    queues.training.grantSendMessages(http);
    queues.generation.grantSendMessages(results);
    queues.generation.grantSendMessages(schedulerFn);
    queues.training.grantSendMessages(schedulerFn);
    schedulerFn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ["batch:SubmitJob"],
        resources: [props.gpuWorker.jobQueue.jobQueueArn, props.gpuWorker.jobDefinition.jobDefinitionArn],
      }),
    );
    schedulerFn.addToRolePolicy(
      new iam.PolicyStatement({ actions: ["batch:ListJobs", "batch:DescribeJobs"], resources: ["*"] }),
    );
    // SubmitJob with tags (the reason a worker was started) also needs TagResource on the new job.
    schedulerFn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ["batch:TagResource"],
        resources: [this.formatArn({ service: "batch", resource: "job", resourceName: "*" })],
      }),
    );
    Validations.of(schedulerFn).acknowledge({
      id: "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:batch:<AWS::Region>:<AWS::AccountId>:job/*]",
      reason:
        "batch:TagResource on the jobs the scheduler submits: a job's id (its ARN) is only known after SubmitJob, so the ARN is a wildcard over jobs of this account and region.",
    });
    Validations.of(schedulerFn).acknowledge({
      id: "AwsSolutions-IAM5[Resource::*]",
      reason:
        "batch:ListJobs and batch:DescribeJobs (is a worker already queued or running?) support no resource-level permissions; they are read-only and the only actions granted on '*'.",
    });

    // ---- consumers
    generator?.addEventSource(
      new SqsEventSource(queues.generation, {
        batchSize: config.generator.batchSize,
        maxConcurrency: Math.max(2, config.generator.maxConcurrency),
        reportBatchItemFailures: true,
      }),
    );
    results.addEventSource(
      new SqsEventSource(queues.results, {
        batchSize: 10,
        maxBatchingWindow: Duration.seconds(5),
        reportBatchItemFailures: true,
      }),
    );

    // ---- HTTP API (CloudFront routes /api/* here)
    const accessLogs = logGroup("HttpApiAccess");
    this.httpApi = new apigwv2.HttpApi(this, "HttpApi", {
      description: "prefloop HTTP API",
      createDefaultStage: false,
      defaultIntegration: new HttpLambdaIntegration("HttpIntegration", http, {
        payloadFormatVersion: apigwv2.PayloadFormatVersion.VERSION_2_0,
      }),
    });
    new apigwv2.HttpStage(this, "DefaultStage", {
      httpApi: this.httpApi,
      stageName: "$default",
      autoDeploy: true,
      throttle: { rateLimit: config.api.rateLimit, burstLimit: config.api.burstLimit },
      accessLogSettings: {
        destination: new apigwv2.LogGroupLogDestination(accessLogs),
        format: apigw.AccessLogFormat.custom(
          JSON.stringify({
            requestId: "$context.requestId",
            ip: "$context.identity.sourceIp",
            method: "$context.httpMethod",
            path: "$context.path",
            status: "$context.status",
            latencyMs: "$context.responseLatency",
            integrationError: "$context.integrationErrorMessage",
          }),
        ),
      },
    });
    for (const route of this.httpApi.node.findAll()) {
      if (route instanceof apigwv2.HttpRoute) {
        Validations.of(route).acknowledge({
          id: "AwsSolutions-APIG4",
          reason:
            "The voting API is public by design (anonymous voters); admin routes check the admin API key and votes carry HMAC-signed tokens inside the Hono app.",
        });
      }
    }

    // ---- scheduler: EventBridge Scheduler invokes the scheduler Lambda
    const tickRole = new iam.Role(this, "SchedulerInvokeRole", {
      assumedBy: new iam.ServicePrincipal("scheduler.amazonaws.com", {
        conditions: { StringEquals: { "aws:SourceAccount": this.account } },
      }),
      description: "EventBridge Scheduler: invoke the prefloop scheduler function",
    });
    new scheduler.Schedule(this, "SchedulerTick", {
      description: "prefloop: top up pair pools, enqueue training, start the GPU worker",
      schedule: scheduler.ScheduleExpression.rate(Duration.minutes(config.scheduler.everyMinutes)),
      target: new schedulerTargets.LambdaInvoke(schedulerFn, {
        role: tickRole,
        input: scheduler.ScheduleTargetInput.fromObject({ task: "tick" }),
        retryAttempts: 0,
        maxEventAge: Duration.minutes(config.scheduler.everyMinutes),
      }),
    });

    Validations.of(tickRole).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${this.getLogicalId(schedulerFn.node.defaultChild as lambda.CfnFunction)}.Arn>:*]`,
      reason:
        "The schedule's role may invoke the scheduler function and its versions/aliases (ARN + ':*'); nothing else.",
    });

    // ---- migrations before the new HTTP code goes live
    new triggers.Trigger(this, "MigrateOnDeploy", {
      handler: migrate,
      executeOnHandlerChange: true,
      executeBefore: [http, results, schedulerFn, ...(generator ? [generator] : [])],
      timeout: Duration.minutes(5),
    });
  }
}

/**
 * The generator images' build context (the Lambda's and the GPU service's) is the repo root; only
 * what the images need goes in.
 */
export const generatorImageExcludes = [
  "*",
  "!package.json",
  "!package-lock.json",
  "!tsconfig.base.json",
  "!functions/package.json",
  "!functions/Dockerfile.generator",
  "!functions/Dockerfile.generator-gpu",
  "!functions/src",
  "!stacks/package.json",
  "!web/package.json",
  "functions/src/**/*.test.ts",
];

/** Lambda gives one vCPU per 1,769 MB of memory, up to 6 (at 10,240 MB). */
export function inferenceThreads(memoryMb: number): number {
  return Math.max(1, Math.min(6, Math.ceil(memoryMb / 1769)));
}

/** Lambda's AWS-managed execution policies, acknowledged with what they grant. */
function withManagedPolicyAcks<T extends lambda.Function>(fn: T): T {
  Validations.of(fn).acknowledge({
    id: "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
    reason: "AWS-maintained policy that only lets the function write its own CloudWatch logs.",
  });
  if (fn.isBoundToVpc) {
    Validations.of(fn).acknowledge({
      id: "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]",
      reason:
        "AWS-maintained policy for the network interfaces a VPC function needs to reach RDS Proxy (ENI actions have no resource-level scoping).",
    });
  }
  return fn;
}

function bundlingOptions(extra: nodejs.BundlingOptions | undefined): nodejs.BundlingOptions {
  return {
    format: nodejs.OutputFormat.ESM,
    target: "node22",
    platform: "node",
    mainFields: ["module", "main"],
    minify: true,
    sourceMap: true,
    sourcesContent: false,
    // pg's optional native binding is never used; the AWS SDK is bundled at the pinned version.
    externalModules: ["pg-native"],
    banner: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
    ...extra,
  };
}
