/**
 * The GPU generator (generator.kind "ecs-gpu"), synthesized for dev: an ECS service on GPU
 * instances instead of the generator Lambda, with the CUDA provider, scaled on the generation
 * queue's backlog, in the app subnets without public IPs, with the Lambda generator's grants.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../functions/src/config.js";
import { databaseUrlFromSecret } from "../../functions/src/entries/lambda-config.js";
import { objectAccess } from "../../stacks/src/api-stack.js";
import { environments, type PlatformConfig } from "../../stacks/src/config.js";
import { generatorStopTimeoutSeconds, scaleOutSteps } from "../../stacks/src/generator-gpu-stack.js";
import { dockerImages, removeTemporaryFolders, type Synthesized, synthPlatform } from "./harness.js";

// biome-ignore lint/suspicious/noExplicitAny: synthesized CloudFormation is untyped JSON
type Cfn = any;
type Resource = { Type: string; Properties?: Record<string, Cfn>; DependsOn?: string[] };

const ecsGpu = (c: PlatformConfig): PlatformConfig => ({
  ...c,
  generator: { ...c.generator, kind: "ecs-gpu" },
});
const gpu = environments.dev.generator.gpu;
let g: Synthesized;
/** The generator stack's template. */
let template: { Resources: Record<string, Resource>; Parameters: Record<string, Cfn> };
let t: Record<string, Resource>;

beforeAll(() => {
  g = synthPlatform("dev", { webDist: "/nonexistent/web/dist", configure: ecsGpu });
  const generator = g.templates.generator;
  if (!generator) throw new Error("no generator stack with generator.kind ecs-gpu");
  template = generator.toJSON() as typeof template;
  t = template.Resources;
});
afterAll(removeTemporaryFolders);

function only(type: string, prefix = ""): [string, Cfn] {
  const found = Object.entries(t).filter(([id, r]) => r.Type === type && id.startsWith(prefix));
  expect(
    found.map(([id]) => id),
    `${type} ${prefix}*`,
  ).toHaveLength(1);
  const [id, r] = found[0] as [string, Resource];
  return [id, r.Properties ?? {}];
}
const list = <T>(x: T | T[]): T[] => (Array.isArray(x) ? x : [x]);
/** Statements of the generator stack's policies, by the role they are attached to. */
function statementsOf(rolePrefix: string): Cfn[] {
  return Object.values(t)
    .filter((r) => r.Type === "AWS::IAM::Policy")
    .filter((r) => list(r.Properties?.Roles).some((ref: Cfn) => String(ref.Ref).startsWith(rolePrefix)))
    .flatMap((r) => r.Properties?.PolicyDocument.Statement as Cfn[]);
}

describe("one consumer kind per environment", () => {
  it("adds the generator stack after the data and api stacks (migrations first)", () => {
    expect(g.assembly.stacks.map((s) => s.stackName).sort()).toEqual(
      ["api", "data", "generator", "operations", "queues", "training", "web"].map((p) => `prefloop-dev-${p}`),
    );
    const deps = g.platform.generator?.dependencies.map((s) => s.stackName) ?? [];
    expect(deps).toEqual(
      expect.arrayContaining(["prefloop-dev-data", "prefloop-dev-api", "prefloop-dev-queues"]),
    );
  });

  it("deploys no generator Lambda, no event source on the generation queue and no Lambda image", () => {
    const api = g.templates.api;
    const fns = Object.keys(api.findResources("AWS::Lambda::Function"));
    expect(fns.filter((id) => id.startsWith("Generator"))).toEqual([]);
    expect(fns.filter((id) => id.startsWith("Http"))).toHaveLength(1);
    const mappings = Object.values(api.findResources("AWS::Lambda::EventSourceMapping"));
    expect(mappings).toHaveLength(1);
    expect(JSON.stringify(mappings[0])).toMatch(/ResultsQueue/);
    expect(dockerImages(g, "api")).toEqual([]);
    expect(g.platform.api.functions.generator).toBeUndefined();
    const alarms = Object.keys(g.templates.operations.findResources("AWS::CloudWatch::Alarm"));
    expect(alarms.filter((id) => id.startsWith("GeneratorErrorRate"))).toEqual([]);
  });
});

describe("GPU instances", () => {
  it("launch the configured GPU type from the ECS GPU-optimised AMI, IMDSv2, encrypted, no public IP", () => {
    const [, lt] = only("AWS::EC2::LaunchTemplate");
    const data = lt.LaunchTemplateData;
    expect(data.InstanceType).toBe(gpu.instanceType);
    expect(data.InstanceType).toMatch(/^(g4dn|g5|g6|g6e|p3|p4d|p5)\./);
    const param = template.Parameters[data.ImageId.Ref];
    expect(param.Default).toBe("/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id");
    expect(data.MetadataOptions).toEqual({ HttpTokens: "required", HttpPutResponseHopLimit: 1 });
    expect(data.BlockDeviceMappings).toEqual([
      {
        DeviceName: "/dev/xvda",
        Ebs: { DeleteOnTermination: true, Encrypted: true, VolumeSize: gpu.rootVolumeGb, VolumeType: "gp3" },
      },
    ]);
    expect(data.NetworkInterfaces.map((n: Cfn) => n.AssociatePublicIpAddress)).toEqual([false]);
    const userData = JSON.stringify(data.UserData);
    expect(userData).toContain("ECS_AWSVPC_BLOCK_IMDS=true");
    expect(userData).toContain("ECS_CLUSTER=");
  });

  it("come from an auto scaling group in the app subnets that the capacity provider manages", () => {
    const [asgId, asg] = only("AWS::AutoScaling::AutoScalingGroup");
    expect(asg).toMatchObject({
      MinSize: "0",
      MaxSize: String(gpu.maxTasks),
      NewInstancesProtectedFromScaleIn: true,
    });
    expect(JSON.stringify(asg.VPCZoneIdentifier)).toMatch(/Vpcapp/);
    const [, cp] = only("AWS::ECS::CapacityProvider");
    expect(cp.AutoScalingGroupProvider).toEqual({
      AutoScalingGroupArn: { Ref: asgId },
      ManagedScaling: { Status: "ENABLED", TargetCapacity: 100 },
      ManagedTerminationProtection: "ENABLED",
    });
    const [, cluster] = only("AWS::ECS::Cluster");
    expect(cluster.ClusterSettings).toEqual([{ Name: "containerInsights", Value: "enabled" }]);
  });
});

describe("the generator task and service", () => {
  it("runs the generator image with one GPU and the CUDA provider", () => {
    const [, td] = only("AWS::ECS::TaskDefinition");
    expect(td.RequiresCompatibilities).toEqual(["EC2"]);
    expect(td.NetworkMode).toBe("awsvpc");
    const [container] = td.ContainerDefinitions;
    expect(td.ContainerDefinitions).toHaveLength(1);
    expect(container.ResourceRequirements).toEqual([{ Type: "GPU", Value: "1" }]);
    expect(container).toMatchObject({
      Cpu: gpu.vcpus * 1024,
      Memory: gpu.memoryMib,
      StopTimeout: generatorStopTimeoutSeconds,
    });
    expect(container.LogConfiguration.LogDriver).toBe("awslogs");
    expect(container.LogConfiguration.Options["awslogs-group"].Ref).toMatch(/^GeneratorLogs/);
    const env = Object.fromEntries(container.Environment.map((e: Cfn) => [e.Name, e.Value]));
    expect(env).toMatchObject({
      INFERENCE_EXECUTION_PROVIDER: "cuda",
      INFERENCE_WORKERS: "1",
      MODEL_DIR: `blob:${environments.dev.generator.modelPrefix}`,
      QUEUE_BACKEND: "sqs",
      BLOB_BACKEND: "s3",
    });
    for (const name of [
      "DATABASE_URL",
      "SIGNING_SECRET",
      "ADMIN_API_KEY",
      "SIGNING_SECRET_ARN",
      "ADMIN_API_KEY_SECRET_ARN",
    ])
      expect(env[name], name).toBeUndefined();
    expect(dockerImages(g, "generator")).toEqual([
      { dockerFile: "functions/Dockerfile.generator-gpu", platform: "linux/amd64" },
    ]);
  });

  it("its environment is a valid configuration: SQS, S3, PostgreSQL by secret, CUDA", () => {
    const [, td] = only("AWS::ECS::TaskDefinition");
    const env: Record<string, string> = {};
    for (const { Name, Value } of td.ContainerDefinitions[0].Environment as { Name: string; Value: Cfn }[]) {
      if (typeof Value === "string") env[Name] = Value;
      else if (Name.startsWith("SQS_"))
        env[Name] = `https://sqs.eu-west-1.amazonaws.com/123456789012/${Name}`;
      else if (Name === "S3_BUCKET") env[Name] = "prefloop-dev-data-123456789012-eu-west-1";
      else if (Name === "AWS_REGION") env[Name] = "eu-west-1";
      else env[Name] = `resolved-${Name.toLowerCase()}`;
    }
    const secret = { username: "prefloop_admin", password: "p@ss/word", dbname: "prefloop", port: 5432 };
    env.DATABASE_URL = databaseUrlFromSecret(JSON.stringify(secret), env.DB_PROXY_ENDPOINT as string);
    const config = loadConfig(env);
    expect(config.inference).toMatchObject({
      executionProvider: "cuda",
      workers: 1,
      intraOpThreads: gpu.vcpus,
    });
    expect(config.queue.backend).toBe("sqs");
    expect(config.blob.backend).toBe("s3");
    expect(config.databaseUrl).toMatch(
      /^postgresql:\/\/prefloop_admin:.*@resolved-db_proxy_endpoint:5432\/prefloop/,
    );
  });

  it("runs in the app subnets with the app security group (RDS Proxy admits it) and no public IP", () => {
    const [, svc] = only("AWS::ECS::Service");
    const net = svc.NetworkConfiguration.AwsvpcConfiguration;
    expect(net.AssignPublicIp).toBe("DISABLED");
    expect(JSON.stringify(net.Subnets)).toMatch(/Vpcapp/);
    expect(JSON.stringify(net.Subnets)).not.toMatch(/Vpcpublic/);
    expect(JSON.stringify(net.SecurityGroups)).toMatch(/AppSecurityGroup/);
    expect(svc.CapacityProviderStrategy).toEqual([
      { CapacityProvider: { Ref: only("AWS::ECS::CapacityProvider")[0] }, Weight: 1 },
    ]);
    expect(svc.DeploymentConfiguration.DeploymentCircuitBreaker).toEqual({ Enable: true, Rollback: true });
    // The task count is the scaling policies' to set; a deploy does not reset it.
    expect(svc.DesiredCount).toBeUndefined();
  });

  it("keeps its logs for the environment's retention", () => {
    const [, lg] = only("AWS::Logs::LogGroup");
    expect(lg.RetentionInDays).toBe(environments.dev.monitoring.logRetentionDays);
  });
});

describe("scaling on the generation queue's backlog", () => {
  it("owns the service's desired count between minTasks and maxTasks", () => {
    const [, target] = only("AWS::ApplicationAutoScaling::ScalableTarget");
    expect(target).toMatchObject({
      MinCapacity: gpu.minTasks,
      MaxCapacity: gpu.maxTasks,
      ServiceNamespace: "ecs",
      ScalableDimension: "ecs:service:DesiredCount",
    });
    expect(JSON.stringify(target.RoleARN)).toContain("AWSServiceRoleForApplicationAutoScaling_ECSService");
    expect(JSON.stringify(target.ResourceId)).toMatch(/GeneratorService/);
  });

  function alarm(prefix: string) {
    const [, a] = only("AWS::CloudWatch::Alarm", prefix);
    const metrics = (a.Metrics as Cfn[]).filter((m) => m.MetricStat);
    expect(metrics.map((m) => m.MetricStat.Metric.MetricName).sort()).toEqual([
      "ApproximateNumberOfMessagesNotVisible",
      "ApproximateNumberOfMessagesVisible",
    ]);
    for (const m of metrics) {
      expect(m.MetricStat.Metric.Namespace).toBe("AWS/SQS");
      expect(JSON.stringify(m.MetricStat.Metric.Dimensions)).toMatch(/GenerationQueue/);
      expect(m.MetricStat).toMatchObject({ Period: 60, Stat: "Maximum" });
    }
    expect((a.Metrics as Cfn[]).find((m) => m.Expression)?.Expression).toBe("visible + inFlight");
    const policy = t[a.AlarmActions[0].Ref as string];
    expect(policy?.Type).toBe("AWS::ApplicationAutoScaling::ScalingPolicy");
    return { alarm: a, policy: policy?.Properties?.StepScalingPolicyConfiguration as Cfn };
  }

  it("scales out within a minute of queued work, to ⌈backlog / jobsPerTask⌉ tasks", () => {
    const { alarm: a, policy } = alarm("BacklogHigh");
    expect(a).toMatchObject({
      Threshold: 1,
      ComparisonOperator: "GreaterThanOrEqualToThreshold",
      EvaluationPeriods: 1,
      TreatMissingData: "notBreaching",
    });
    expect(policy.AdjustmentType).toBe("ExactCapacity");
    const tasksFor = (backlog: number) =>
      (policy.StepAdjustments as Cfn[]).find(
        (s) =>
          backlog - a.Threshold >= (s.MetricIntervalLowerBound ?? -Infinity) &&
          backlog - a.Threshold < (s.MetricIntervalUpperBound ?? Infinity),
      )?.ScalingAdjustment;
    for (let backlog = 1; backlog <= gpu.jobsPerTask * (gpu.maxTasks + 2); backlog++) {
      expect(tasksFor(backlog), `backlog ${backlog}`).toBe(
        Math.min(gpu.maxTasks, Math.ceil(backlog / gpu.jobsPerTask)),
      );
    }
    expect(scaleOutSteps({ maxTasks: 1, jobsPerTask: 5 })).toEqual([
      { lowerBound: 0, upperBound: undefined, adjustment: 1 },
    ]);
  });

  it("scales in to minTasks after scaleInMinutes without queued or in-flight work", () => {
    const { alarm: a, policy } = alarm("BacklogEmpty");
    expect(a).toMatchObject({
      Threshold: 0,
      ComparisonOperator: "LessThanOrEqualToThreshold",
      EvaluationPeriods: gpu.scaleInMinutes,
      TreatMissingData: "breaching",
    });
    expect(policy).toMatchObject({
      AdjustmentType: "ExactCapacity",
      StepAdjustments: [{ MetricIntervalUpperBound: 0, ScalingAdjustment: gpu.minTasks }],
    });
  });
});

describe("least privilege", () => {
  it("the task role has the generator Lambda's grants: consume the generation queue, its S3 prefixes, the database secret", () => {
    const statements = statementsOf("GeneratorTaskRole");
    const sqs = statements.filter((s) => list(s.Action).some((a: string) => a.startsWith("sqs:")));
    expect(sqs).toHaveLength(1);
    expect(JSON.stringify(sqs[0].Resource)).toMatch(/GenerationQueue/);
    expect(list(sqs[0].Action).sort()).toEqual([
      "sqs:ChangeMessageVisibility",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:GetQueueUrl",
      "sqs:ReceiveMessage",
    ]);
    const prefixes = (action: string) =>
      statements
        .filter((s) => list(s.Action).includes(action))
        .flatMap((s) =>
          list(s.Resource).map((r) => /\/([a-z]+\/)\*/.exec(JSON.stringify(r).replaceAll('"', ""))?.[1]),
        )
        .sort();
    const sorted = (xs: readonly string[]) => [...new Set(xs)].sort();
    expect(prefixes("s3:GetObject")).toEqual(
      sorted([...objectAccess.generator.read, ...objectAccess.generator.write]),
    );
    expect(prefixes("s3:PutObject")).toEqual(sorted(objectAccess.generator.write));
    expect(prefixes("s3:DeleteObject")).toEqual([]);
    const secrets = statements.filter((s) => list(s.Action).includes("secretsmanager:GetSecretValue"));
    expect(secrets).toHaveLength(1);
    expect(JSON.stringify(secrets[0].Resource)).toMatch(/DatabaseSecret/);
    expect(JSON.stringify(template)).not.toMatch(/SigningSecret|AdminApiKey/);
  });

  it("no '*' action; '*' resources only for the ECS agent's and ECR's unscoped actions", () => {
    const unscoped = new Set([
      "ecr:GetAuthorizationToken",
      "ecs:DiscoverPollEndpoint",
      // the ECS container agent's own log calls (CDK's container-instance statements)
      "logs:CreateLogStream",
      "logs:PutLogEvents",
    ]);
    for (const [id, r] of Object.entries(t).filter(([, r]) => r.Type === "AWS::IAM::Policy")) {
      for (const s of (r.Properties as Cfn).PolicyDocument.Statement as Cfn[]) {
        for (const action of list(s.Action)) expect(action, id).not.toMatch(/^(\*|[a-z0-9]+:\*)$/);
        if (!list(s.Resource).includes("*")) continue;
        for (const action of list(s.Action) as string[]) {
          if (action === "ecs:Poll" || action === "ecs:StartTelemetrySession") {
            expect(s.Condition?.ArnEquals?.["ecs:cluster"], `${id} ${action}`).toBeDefined();
            continue;
          }
          expect(unscoped.has(action), `${id} ${action} on *`).toBe(true);
          if (action.startsWith("logs:") || action.startsWith("ecs:")) expect(id).toMatch(/^InstanceRole/);
        }
      }
    }
  });
});
