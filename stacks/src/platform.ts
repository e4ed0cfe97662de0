/**
 * The whole platform as one CDK app: six stacks that map onto DESIGN.md's table.
 *
 *   data        VPC, Aurora Serverless v2 PostgreSQL + RDS Proxy, the data bucket
 *   queues      generation / training / results queues with dead-letter queues
 *   training    the GPU worker on AWS Batch (scale to zero)
 *   api         Lambdas (HTTP API, generator, results, scheduler, migrations), secrets
 *   generator   the generator on ECS GPU instances, instead of the generator Lambda
 *               (only with generator.kind "ecs-gpu")
 *   web         the web app on S3 + CloudFront, /api/* to the HTTP API
 *   operations  alarms
 */
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { type App, CfnOutput, type Environment, Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks } from "cdk-nag";
import { ApiStack } from "./api-stack.js";
import type { PlatformConfig } from "./config.js";
import { DataStack } from "./data-stack.js";
import { GeneratorGpuStack } from "./generator-gpu-stack.js";
import { OperationsStack } from "./operations-stack.js";
import { QueuesStack } from "./queues-stack.js";
import { TrainingStack } from "./training-stack.js";
import { WebStack } from "./web-stack.js";

/** The repository root (stacks/src/ → ../../). */
export const repoRoot = fileURLToPath(new URL("../../", import.meta.url));

export interface PlatformOptions {
  readonly config: PlatformConfig;
  /** Account/region to deploy to; undefined synthesizes environment-agnostic templates. */
  readonly env?: Environment;
  readonly repoRoot?: string;
  /** The Vite build output (default web/dist). */
  readonly webDist?: string;
  /** The GPU worker image's build context and Dockerfile (default: repo root, gpu-worker/Dockerfile). */
  readonly workerImage?: { readonly directory: string; readonly file: string };
  /** Run the cdk-nag AwsSolutions checks at synthesis (default true). */
  readonly nag?: boolean;
}

export interface Platform {
  readonly data: DataStack;
  readonly queues: QueuesStack;
  readonly training: TrainingStack;
  readonly api: ApiStack;
  /** Only with generator.kind "ecs-gpu". */
  readonly generator?: GeneratorGpuStack;
  readonly web: WebStack;
  readonly operations: OperationsStack;
}

export function stackName(config: PlatformConfig, part: string): string {
  return `prefloop-${config.name}-${part}`;
}

export function buildPlatform(app: App, options: PlatformOptions): Platform {
  const { config, env } = options;
  const root = options.repoRoot ?? repoRoot;
  const common = (part: string, description: string) => ({
    env,
    config,
    stackName: stackName(config, part),
    description: `prefloop (${config.name}): ${description}`,
    tags: { project: "prefloop", environment: config.name },
  });

  const data = new DataStack(
    app,
    stackName(config, "data"),
    common("data", "VPC, Aurora PostgreSQL, data bucket"),
  );
  const queues = new QueuesStack(app, stackName(config, "queues"), common("queues", "job queues"));
  const training = new TrainingStack(app, stackName(config, "training"), {
    ...common("training", "GPU worker on AWS Batch"),
    vpc: data.vpc,
    trainingQueue: queues.training,
    resultsQueue: queues.results,
    workerImage: options.workerImage ?? { directory: root, file: "gpu-worker/Dockerfile" },
  });
  const api = new ApiStack(app, stackName(config, "api"), {
    ...common("api", "Lambda functions, HTTP API, scheduler, secrets"),
    repoRoot: root,
    vpc: data.vpc,
    appSecurityGroup: data.appSecurityGroup,
    databaseSecret: data.databaseSecret,
    databaseProxy: data.proxy,
    queues: { generation: queues.generation, training: queues.training, results: queues.results },
    deadLetterQueues: queues.deadLetters,
    gpuWorker: { jobQueue: training.jobQueue, jobDefinition: training.jobDefinition },
  });
  // Both name the data bucket without a reference (see dataBucketName): deploy data first.
  training.addStackDependency(data);
  api.addStackDependency(data);
  const generator =
    config.generator.kind === "ecs-gpu"
      ? new GeneratorGpuStack(app, stackName(config, "generator"), {
          ...common("generator", "generator on ECS GPU instances"),
          repoRoot: root,
          vpc: data.vpc,
          appSecurityGroup: data.appSecurityGroup,
          databaseSecret: data.databaseSecret,
          databaseProxy: data.proxy,
          queues: { generation: queues.generation, training: queues.training, results: queues.results },
        })
      : undefined;
  // The data bucket by name, as above; and the api stack's migrations run before new generator code.
  generator?.addStackDependency(data);
  generator?.addStackDependency(api);
  new CfnOutput(api, "ApiUrl", {
    description: "The HTTP API (also at <site>/api)",
    value: api.httpApi.apiEndpoint,
  });
  new CfnOutput(api, "AdminApiKeySecretArn", {
    description: "Secrets Manager secret holding the admin API key",
    value: api.adminApiKeySecret.secretArn,
  });
  const web = new WebStack(app, stackName(config, "web"), {
    ...common("web", "web app on S3 + CloudFront"),
    httpApi: api.httpApi,
    webDist: options.webDist ?? path.join(root, "web", "dist"),
  });
  new CfnOutput(data, "DataBucketName", { value: data.dataBucket.bucketName });
  const operations = new OperationsStack(app, stackName(config, "operations"), {
    ...common("operations", "alarms"),
    functions: api.functions,
    httpApi: api.httpApi,
    deadLetterQueues: queues.deadLetters,
    trainingQueue: queues.training,
    generationQueue: queues.generation,
  });

  if (options.nag ?? true) Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { data, queues, training, api, ...(generator ? { generator } : {}), web, operations };
}
