/**
 * The environment every process of the platform on AWS receives (functions/src/config.ts reads
 * it): S3 blobs, SQS queues, the database by secret ARN + RDS Proxy endpoint. Queue URLs are not
 * secrets: IAM decides who may use them. STATE_DIR is the folder the code may write to (/tmp, the
 * only writable one in Lambda), for model files copied from the data bucket.
 */
import type * as rds from "aws-cdk-lib/aws-rds";
import type * as secretsmanager from "aws-cdk-lib/aws-secretsmanager";
import type * as sqs from "aws-cdk-lib/aws-sqs";
import type { PlatformConfig } from "./config.js";

export interface RuntimeResources {
  readonly bucketName: string;
  readonly queues: {
    readonly generation: sqs.IQueue;
    readonly training: sqs.IQueue;
    readonly results: sqs.IQueue;
  };
  readonly databaseSecret: secretsmanager.ISecret;
  readonly databaseProxy: rds.IDatabaseProxy;
}

export function runtimeEnvironment(config: PlatformConfig, r: RuntimeResources): Record<string, string> {
  return {
    PREFLOOP_ENV: config.name,
    LOG_LEVEL: "info",
    NODE_OPTIONS: "--enable-source-maps",
    BLOB_BACKEND: "s3",
    S3_BUCKET: r.bucketName,
    QUEUE_BACKEND: "sqs",
    SQS_GENERATION_QUEUE_URL: r.queues.generation.queueUrl,
    SQS_TRAINING_QUEUE_URL: r.queues.training.queueUrl,
    SQS_RESULTS_QUEUE_URL: r.queues.results.queueUrl,
    DB_SECRET_ARN: r.databaseSecret.secretArn,
    DB_PROXY_ENDPOINT: r.databaseProxy.endpoint,
    STATE_DIR: "/tmp/prefloop",
  };
}
