/**
 * The GPU generator (config `generator.kind: "ecs-gpu"`): the generation queue's consumer as an ECS
 * service on GPU instances, for models the CPU Lambda cannot render in time (SDXL at 1024 px). The
 * same consumer code as the generator Lambda (functions/src/entries/generator-service.ts) with
 * onnxruntime's CUDA provider; one task with one GPU per instance, in the app subnets with the app
 * security group (RDS Proxy admits it), no public IPs. The service scales on the queue's backlog
 * (visible + in-flight messages): a task per `jobsPerTask` jobs up to `maxTasks` within a minute,
 * back to `minTasks` after `scaleInMinutes` without work; the capacity provider launches and
 * retires the instances the tasks need.
 */
import { Duration, IgnoreMode, RemovalPolicy, Stack, type StackProps, Validations } from "aws-cdk-lib";
import * as appscaling from "aws-cdk-lib/aws-applicationautoscaling";
import * as autoscaling from "aws-cdk-lib/aws-autoscaling";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import * as actions from "aws-cdk-lib/aws-cloudwatch-actions";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import * as ecrAssets from "aws-cdk-lib/aws-ecr-assets";
import * as ecs from "aws-cdk-lib/aws-ecs";
import * as iam from "aws-cdk-lib/aws-iam";
import * as logs from "aws-cdk-lib/aws-logs";
import type * as rds from "aws-cdk-lib/aws-rds";
import * as s3 from "aws-cdk-lib/aws-s3";
import type * as secretsmanager from "aws-cdk-lib/aws-secretsmanager";
import type * as sqs from "aws-cdk-lib/aws-sqs";
import type { Construct } from "constructs";
import { generatorImageExcludes, objectAccess } from "./api-stack.js";
import type { GpuGeneratorConfig, PlatformConfig } from "./config.js";
import { dataBucketArnInFindings, dataBucketName } from "./data-stack.js";
import { grantObjects } from "./grants.js";
import { runtimeEnvironment } from "./runtime-env.js";

export interface GeneratorGpuStackProps extends StackProps {
  readonly config: PlatformConfig;
  readonly repoRoot: string;
  readonly vpc: ec2.IVpc;
  /** The security group RDS Proxy admits (the tasks write generation rows). */
  readonly appSecurityGroup: ec2.ISecurityGroup;
  readonly databaseSecret: secretsmanager.ISecret;
  readonly databaseProxy: rds.IDatabaseProxy;
  readonly queues: {
    readonly generation: sqs.IQueue;
    readonly training: sqs.IQueue;
    readonly results: sqs.IQueue;
  };
}

/** Seconds ECS waits after SIGTERM before it kills a task: the jobs in hand finish first. */
export const generatorStopTimeoutSeconds = 120;

/**
 * Step adjustments of the scale-out policy (alarm: backlog ≥ 1) as exact task counts:
 * ⌈backlog / jobsPerTask⌉, at most maxTasks. Bounds are on backlog − 1 (the alarm's threshold).
 */
export function scaleOutSteps(gpu: Pick<GpuGeneratorConfig, "maxTasks" | "jobsPerTask">) {
  return Array.from({ length: gpu.maxTasks }, (_, k) => ({
    lowerBound: k * gpu.jobsPerTask,
    upperBound: k === gpu.maxTasks - 1 ? undefined : (k + 1) * gpu.jobsPerTask,
    adjustment: k + 1,
  }));
}

export class GeneratorGpuStack extends Stack {
  readonly cluster: ecs.Cluster;
  readonly service: ecs.Ec2Service;
  readonly taskRole: iam.Role;
  readonly scalableTarget: appscaling.ScalableTarget;

  constructor(scope: Construct, id: string, props: GeneratorGpuStackProps) {
    super(scope, id, props);
    const { config, queues } = props;
    const gpu = config.generator.gpu;
    // By its fixed name, so that policies can name exact key prefixes (see dataBucketName).
    const dataBucket = s3.Bucket.fromBucketName(this, "DataBucket", dataBucketName(config));

    this.cluster = new ecs.Cluster(this, "Cluster", {
      vpc: props.vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
    });

    // ---- GPU instances: ECS GPU-optimised AL2023 AMI, IMDSv2, encrypted root volume, no public IP
    const instanceSecurityGroup = new ec2.SecurityGroup(this, "InstanceSecurityGroup", {
      vpc: props.vpc,
      description: "GPU generator instances: outbound only (ECS, ECR, CloudWatch Logs)",
      allowAllOutbound: true,
    });
    const instanceRole = new iam.Role(this, "InstanceRole", {
      assumedBy: new iam.ServicePrincipal("ec2.amazonaws.com"),
      description: "ECS container agent on the GPU generator instances (the tasks use their own role)",
    });
    const userData = ec2.UserData.forLinux();
    // Tasks get credentials from their task role only, never from the instance's metadata.
    userData.addCommands("echo ECS_AWSVPC_BLOCK_IMDS=true >> /etc/ecs/ecs.config");
    const launchTemplate = new ec2.LaunchTemplate(this, "GpuLaunchTemplate", {
      instanceType: new ec2.InstanceType(gpu.instanceType),
      machineImage: ecs.EcsOptimizedImage.amazonLinux2023(ecs.AmiHardwareType.GPU),
      userData,
      role: instanceRole,
      securityGroup: instanceSecurityGroup,
      requireImdsv2: true,
      httpPutResponseHopLimit: 1,
      detailedMonitoring: true,
      associatePublicIpAddress: false,
      blockDevices: [
        {
          deviceName: "/dev/xvda",
          volume: ec2.BlockDeviceVolume.ebs(gpu.rootVolumeGb, {
            encrypted: true,
            volumeType: ec2.EbsDeviceVolumeType.GP3,
            deleteOnTermination: true,
          }),
        },
      ],
    });
    const instances = new autoscaling.AutoScalingGroup(this, "GpuInstances", {
      vpc: props.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      launchTemplate,
      minCapacity: 0,
      maxCapacity: gpu.maxTasks,
    });
    const capacityProvider = new ecs.AsgCapacityProvider(this, "GpuCapacity", {
      autoScalingGroup: instances,
      enableManagedScaling: true,
      enableManagedTerminationProtection: true,
      targetCapacityPercent: 100,
    });
    this.cluster.addAsgCapacityProvider(capacityProvider);

    // ---- the task: the generator image, one GPU, the CUDA provider
    const image = new ecrAssets.DockerImageAsset(this, "GeneratorImage", {
      directory: props.repoRoot,
      file: "functions/Dockerfile.generator-gpu",
      platform: ecrAssets.Platform.LINUX_AMD64,
      ignoreMode: IgnoreMode.DOCKER,
      exclude: generatorImageExcludes,
    });
    const logGroup = new logs.LogGroup(this, "GeneratorLogs", {
      retention: config.monitoring.logRetentionDays,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.taskRole = new iam.Role(this, "GeneratorTaskRole", {
      assumedBy: new iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
      description: "prefloop GPU generator: consume generation jobs, read models and adapters, write images",
    });
    const executionRole = new iam.Role(this, "GeneratorExecutionRole", {
      assumedBy: new iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
      description: "Pulls the GPU generator image and writes its logs",
    });
    const taskDefinition = new ecs.Ec2TaskDefinition(this, "GeneratorTask", {
      networkMode: ecs.NetworkMode.AWS_VPC,
      taskRole: this.taskRole,
      executionRole,
    });
    taskDefinition.addContainer("generator", {
      image: ecs.ContainerImage.fromDockerImageAsset(image),
      gpuCount: 1,
      cpu: gpu.vcpus * 1024,
      memoryLimitMiB: gpu.memoryMib,
      stopTimeout: Duration.seconds(generatorStopTimeoutSeconds),
      logging: ecs.LogDrivers.awsLogs({ streamPrefix: "generator", logGroup }),
      environment: {
        ...runtimeEnvironment(config, {
          bucketName: dataBucket.bucketName,
          queues,
          databaseSecret: props.databaseSecret,
          databaseProxy: props.databaseProxy,
        }),
        AWS_REGION: Stack.of(this).region,
        // The exported base model, copied from the data bucket into STATE_DIR on the first job.
        MODEL_DIR: `blob:${config.generator.modelPrefix}`,
        INFERENCE_EXECUTION_PROVIDER: "cuda",
        // One pipeline on the GPU; its worker thread keeps the queue loop's event loop free.
        INFERENCE_WORKERS: "1",
        INFERENCE_THREADS: String(gpu.vcpus),
      },
    });

    this.service = new ecs.Ec2Service(this, "GeneratorService", {
      cluster: this.cluster,
      taskDefinition,
      capacityProviderStrategies: [{ capacityProvider: capacityProvider.capacityProviderName, weight: 1 }],
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      securityGroups: [props.appSecurityGroup],
      assignPublicIp: false,
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
      circuitBreaker: { rollback: true },
    });

    // ---- permissions: what the generator Lambda gets, nothing more
    queues.generation.grantConsumeMessages(this.taskRole);
    props.databaseSecret.grantRead(this.taskRole);
    grantObjects(this.taskRole, dataBucket, objectAccess.generator, {
      acknowledgeOn: this.taskRole,
      bucketArnInFindings: dataBucketArnInFindings(config),
      who: "The GPU generator (base model files, adapters, generated images)",
    });

    // ---- scaling on the generation queue's backlog
    this.scalableTarget = new appscaling.ScalableTarget(this, "GeneratorTasks", {
      serviceNamespace: appscaling.ServiceNamespace.ECS,
      scalableDimension: "ecs:service:DesiredCount",
      resourceId: `service/${this.cluster.clusterName}/${this.service.serviceName}`,
      minCapacity: gpu.minTasks,
      maxCapacity: gpu.maxTasks,
      // Application Auto Scaling's service-linked role for ECS (as Ec2Service.autoScaleTaskCount uses).
      role: iam.Role.fromRoleArn(
        this,
        "ScalingRole",
        this.formatArn({
          region: "",
          service: "iam",
          resource: "role/aws-service-role/ecs.application-autoscaling.amazonaws.com",
          resourceName: "AWSServiceRoleForApplicationAutoScaling_ECSService",
        }),
      ),
    });
    this.scaleOnBacklog(queues.generation, gpu);

    this.acknowledge(instances, instanceRole, executionRole, taskDefinition);
  }

  /** Exact task counts from the backlog: out within a minute of work, in after scaleInMinutes without. */
  private scaleOnBacklog(queue: sqs.IQueue, gpu: GpuGeneratorConfig): void {
    const period = Duration.minutes(1);
    const backlog = new cloudwatch.MathExpression({
      label: "generation jobs queued or in flight",
      expression: "visible + inFlight",
      usingMetrics: {
        visible: queue.metricApproximateNumberOfMessagesVisible({ period, statistic: "Maximum" }),
        inFlight: queue.metricApproximateNumberOfMessagesNotVisible({ period, statistic: "Maximum" }),
      },
      period,
    });

    const scaleOut = new appscaling.StepScalingAction(this, "ScaleOut", {
      scalingTarget: this.scalableTarget,
      adjustmentType: appscaling.AdjustmentType.EXACT_CAPACITY,
      metricAggregationType: appscaling.MetricAggregationType.MAXIMUM,
      cooldown: Duration.minutes(1),
    });
    for (const step of scaleOutSteps(gpu)) scaleOut.addAdjustment(step);
    new cloudwatch.Alarm(this, "BacklogHigh", {
      alarmDescription: "Generation jobs are waiting: the GPU generator scales out to the backlog.",
      metric: backlog,
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    }).addAlarmAction(new actions.ApplicationScalingAction(scaleOut));

    const scaleIn = new appscaling.StepScalingAction(this, "ScaleIn", {
      scalingTarget: this.scalableTarget,
      adjustmentType: appscaling.AdjustmentType.EXACT_CAPACITY,
      metricAggregationType: appscaling.MetricAggregationType.MAXIMUM,
      cooldown: Duration.minutes(5),
    });
    scaleIn.addAdjustment({ upperBound: 0, adjustment: gpu.minTasks });
    new cloudwatch.Alarm(this, "BacklogEmpty", {
      alarmDescription: `No generation job queued or in flight for ${gpu.scaleInMinutes} minutes: the GPU generator scales in to ${gpu.minTasks} task(s).`,
      metric: backlog,
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: gpu.scaleInMinutes,
      // SQS stops publishing a queue's metrics while nothing uses it: no data is no work.
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
    }).addAlarmAction(new actions.ApplicationScalingAction(scaleIn));
  }

  private acknowledge(
    instances: autoscaling.AutoScalingGroup,
    instanceRole: iam.Role,
    executionRole: iam.Role,
    taskDefinition: ecs.TaskDefinition,
  ): void {
    Validations.of(instanceRole).acknowledge({
      id: "AwsSolutions-IAM5[Resource::*]",
      reason:
        "The ECS container agent's statements from ecs.Cluster: ecs:DiscoverPollEndpoint and ecr:GetAuthorizationToken have no resource-level permissions; ecs:Poll and ecs:StartTelemetrySession are limited to this cluster by an ecs:cluster condition; logs:CreateLogStream/PutLogEvents are the agent's (the tasks log through their execution role).",
    });
    Validations.of(instanceRole).acknowledge({
      id: "AwsSolutions-IAM5[Action::ecs:Submit*]",
      reason:
        "ecs:Submit* (container, task and attachment state changes) is what the ECS container agent reports, and is limited to this cluster's ARN.",
    });
    Validations.of(executionRole).acknowledge({
      id: "AwsSolutions-IAM5[Resource::*]",
      reason:
        "ecr:GetAuthorizationToken has no resource-level permissions; image pulls themselves are limited to the generator image's repository.",
    });
    Validations.of(taskDefinition).acknowledge({
      id: "AwsSolutions-ECS2",
      reason:
        "The environment holds settings only (queue URLs, bucket name, proxy endpoint, secret ARNs); the secrets themselves are read from Secrets Manager by ARN under the task role at start.",
    });
    Validations.of(instances).acknowledge({
      id: "AwsSolutions-AS3",
      reason:
        "The ECS capacity provider scales this group (instances follow the service's tasks); its activity is in the group's history, and the generation queue's age alarm reports a generator that does not keep up.",
    });
  }
}
