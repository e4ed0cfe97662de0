/**
 * Per-environment settings for the whole platform: the one typed file a deployer edits.
 * `cdk deploy -c env=prod` picks `prod`; the default is `dev`.
 */

export type EnvironmentName = "dev" | "prod";

export interface PlatformConfig {
  /** Used in stack names (`prefloop-dev-data`) and passed to the functions as PREFLOOP_ENV. */
  readonly name: EnvironmentName;
  readonly vpc: {
    readonly maxAzs: number;
    /** NAT gateways give Lambdas and GPU instances egress (SQS, Secrets Manager, ECR). */
    readonly natGateways: number;
  };
  readonly database: {
    /** Aurora Serverless v2 capacity in ACUs. */
    readonly minCapacity: number;
    readonly maxCapacity: number;
    /** Reader instances in addition to the writer (scale with the writer). */
    readonly readers: number;
    readonly backupRetentionDays: number;
    readonly deletionProtection: boolean;
    /** Destroy the cluster on stack deletion (dev) or keep a final snapshot (prod). */
    readonly removal: "destroy" | "snapshot";
  };
  readonly storage: {
    /** Keep buckets when the stack is deleted. */
    readonly retainBuckets: boolean;
    /** Objects under `tmp/` expire after this many days. */
    readonly tempObjectDays: number;
    /** Overwritten or deleted object versions are kept this long. */
    readonly noncurrentVersionDays: number;
    readonly abortIncompleteUploadDays: number;
  };
  readonly api: {
    readonly memoryMb: number;
    readonly timeoutSeconds: number;
    /** HTTP API stage throttling (requests per second, burst). */
    readonly rateLimit: number;
    readonly burstLimit: number;
  };
  readonly generator: {
    /**
     * Which consumer renders the generation queue; one kind per environment. `lambda`: a CPU
     * container-image Lambda (the tiny model, distilled few-step models). `ecs-gpu`: an ECS service
     * on GPU instances running the same consumer with onnxruntime's CUDA provider (real-size models:
     * SD 1.5 / 2.x at full size, SDXL). memoryMb … batchSize size the Lambda; `gpu` sizes the
     * service; modelPrefix serves both.
     */
    readonly kind: "lambda" | "ecs-gpu";
    readonly memoryMb: number;
    readonly timeoutSeconds: number;
    /** /tmp size for model files and images. */
    readonly ephemeralStorageMb: number;
    /** Upper bound on concurrent generator invocations (SQS event source max concurrency, >= 2). */
    readonly maxConcurrency: number;
    /** Jobs per invocation (the two images of a pair render together). */
    readonly batchSize: number;
    /** Prefix in the data bucket holding the exported ONNX base model. */
    readonly modelPrefix: string;
    /** The ECS service on GPU instances (kind `ecs-gpu`). */
    readonly gpu: GpuGeneratorConfig;
  };
  readonly scheduler: {
    /** How often the scheduler tops up pair pools and starts training. */
    readonly everyMinutes: number;
  };
  readonly training: {
    /** GPU instance types Batch may launch. */
    readonly instanceTypes: readonly string[];
    /** Ceiling on vCPUs for the GPU compute environment (0 when idle). */
    readonly maxvCpus: number;
    readonly spot: boolean;
    readonly gpus: number;
    readonly vcpus: number;
    readonly memoryMib: number;
    /** Hard limit on one worker run; the training queue's visibility timeout is derived from it. */
    readonly jobTimeoutMinutes: number;
    /** Root volume of GPU instances (container image + model cache). */
    readonly rootVolumeGb: number;
  };
  readonly monitoring: {
    /** Alarm notifications go to this address when set. */
    readonly alarmEmail?: string;
    /** Alarm when the oldest queued training job is older than this. */
    readonly oldestTrainingJobMinutes: number;
    /** Alarm when a function's errors exceed this share of its invocations. */
    readonly errorRatePercent: number;
    readonly logRetentionDays: number;
  };
  readonly web: {
    /** CloudFront price class: 100 (NA/EU), 200, or ALL. */
    readonly priceClass: "100" | "200" | "ALL";
  };
}

export interface GpuGeneratorConfig {
  /** GPU instance type (ECS GPU-optimised AMI); one task, with one GPU, per instance. */
  readonly instanceType: string;
  /** Tasks while the queue is empty: 0 scales to zero (the first jobs wait for an instance), 1 keeps one warm. */
  readonly minTasks: number;
  readonly maxTasks: number;
  /** Queued + in-flight generation jobs per task: the backlog over this adds a task (up to maxTasks). */
  readonly jobsPerTask: number;
  /** Minutes without any queued or in-flight job before the service scales in to minTasks. */
  readonly scaleInMinutes: number;
  /** vCPUs and memory reserved for the container (an xlarge instance has 4 vCPUs and 16 GiB). */
  readonly vcpus: number;
  readonly memoryMib: number;
  /** Root volume of the instances (container image, model files copied from the data bucket). */
  readonly rootVolumeGb: number;
}

const dev: PlatformConfig = {
  name: "dev",
  vpc: { maxAzs: 2, natGateways: 1 },
  database: {
    minCapacity: 0.5,
    maxCapacity: 4,
    readers: 0,
    backupRetentionDays: 7,
    deletionProtection: false,
    removal: "destroy",
  },
  storage: {
    retainBuckets: false,
    tempObjectDays: 1,
    noncurrentVersionDays: 7,
    abortIncompleteUploadDays: 1,
  },
  api: { memoryMb: 1024, timeoutSeconds: 29, rateLimit: 50, burstLimit: 100 },
  generator: {
    kind: "lambda",
    memoryMb: 10240,
    timeoutSeconds: 300,
    ephemeralStorageMb: 4096,
    maxConcurrency: 4,
    batchSize: 2,
    modelPrefix: "models/base/",
    gpu: {
      instanceType: "g6.xlarge",
      minTasks: 0,
      maxTasks: 2,
      jobsPerTask: 20,
      scaleInMinutes: 15,
      vcpus: 3,
      memoryMib: 12288,
      rootVolumeGb: 100,
    },
  },
  scheduler: { everyMinutes: 5 },
  training: {
    instanceTypes: ["g5.xlarge", "g6.xlarge"],
    maxvCpus: 8,
    spot: true,
    gpus: 1,
    vcpus: 4,
    memoryMib: 15000,
    jobTimeoutMinutes: 180,
    rootVolumeGb: 100,
  },
  monitoring: { oldestTrainingJobMinutes: 120, errorRatePercent: 5, logRetentionDays: 14 },
  web: { priceClass: "100" },
};

const prod: PlatformConfig = {
  name: "prod",
  vpc: { maxAzs: 2, natGateways: 2 },
  database: {
    minCapacity: 0.5,
    maxCapacity: 16,
    readers: 1,
    backupRetentionDays: 30,
    deletionProtection: true,
    removal: "snapshot",
  },
  storage: {
    retainBuckets: true,
    tempObjectDays: 1,
    noncurrentVersionDays: 30,
    abortIncompleteUploadDays: 1,
  },
  api: { memoryMb: 1769, timeoutSeconds: 29, rateLimit: 500, burstLimit: 1000 },
  generator: {
    kind: "lambda",
    memoryMb: 10240,
    timeoutSeconds: 600,
    ephemeralStorageMb: 8192,
    maxConcurrency: 20,
    batchSize: 2,
    modelPrefix: "models/base/",
    gpu: {
      instanceType: "g5.xlarge",
      minTasks: 1,
      maxTasks: 8,
      jobsPerTask: 20,
      scaleInMinutes: 30,
      vcpus: 3,
      memoryMib: 12288,
      rootVolumeGb: 150,
    },
  },
  scheduler: { everyMinutes: 5 },
  training: {
    instanceTypes: ["g5.2xlarge", "g6.2xlarge"],
    maxvCpus: 32,
    spot: false,
    gpus: 1,
    vcpus: 8,
    memoryMib: 30000,
    jobTimeoutMinutes: 360,
    rootVolumeGb: 150,
  },
  monitoring: { oldestTrainingJobMinutes: 240, errorRatePercent: 2, logRetentionDays: 90 },
  web: { priceClass: "ALL" },
};

export const environments: Readonly<Record<EnvironmentName, PlatformConfig>> = { dev, prod };

/** The configuration for `name`; throws a one-line error for an unknown environment. */
export function configFor(name: string | undefined): PlatformConfig {
  const key = name ?? "dev";
  if (key !== "dev" && key !== "prod") {
    throw new Error(`unknown environment "${key}": use -c env=dev or -c env=prod`);
  }
  return environments[key];
}
