/**
 * Web: the built web app (web/dist) in a private S3 bucket behind CloudFront with origin access
 * control; `/api/*` goes to the HTTP API with the `/api` prefix removed (the Hono app's routes are
 * rooted at `/`). Without a build the stack still deploys the distribution and says so.
 */
import { existsSync } from "node:fs";
import * as path from "node:path";
import {
  Annotations,
  CfnOutput,
  DefaultStackSynthesizer,
  Duration,
  RemovalPolicy,
  Stack,
  type StackProps,
  Validations,
} from "aws-cdk-lib";
import type * as apigwv2 from "aws-cdk-lib/aws-apigatewayv2";
import * as cloudfront from "aws-cdk-lib/aws-cloudfront";
import * as origins from "aws-cdk-lib/aws-cloudfront-origins";
import * as logs from "aws-cdk-lib/aws-logs";
import * as s3 from "aws-cdk-lib/aws-s3";
import * as s3deploy from "aws-cdk-lib/aws-s3-deployment";
import type { Construct } from "constructs";
import type { PlatformConfig } from "./config.js";

export interface WebStackProps extends StackProps {
  readonly config: PlatformConfig;
  readonly httpApi: apigwv2.IHttpApi;
  /** The Vite build output; deployed only when it holds an index.html. */
  readonly webDist: string;
}

/** Viewer-request code for `/api/*`: `/api/pairs?x` reaches the HTTP API as `/pairs?x`. */
export const stripApiPrefixCode = `function handler(event) {
  var request = event.request;
  request.uri = request.uri.replace(/^\\/api(?=\\/|$)/, "") || "/";
  return request;
}`;

/**
 * Viewer-request code for the site: client-side routes (no file extension) serve index.html, the
 * dashboard's (`/admin`, `/admin/…`) admin.html.
 */
export const spaFallbackCode = `function handler(event) {
  var request = event.request;
  var uri = request.uri;
  var last = uri.split("/").pop();
  if (last.indexOf(".") === -1) {
    request.uri = uri === "/admin" || uri.indexOf("/admin/") === 0 ? "/admin.html" : "/index.html";
  }
  return request;
}`;

export function hasWebBuild(webDist: string): boolean {
  return existsSync(path.join(webDist, "index.html"));
}

export class WebStack extends Stack {
  readonly siteBucket: s3.Bucket;
  readonly distribution: cloudfront.Distribution;
  readonly deployment: s3deploy.BucketDeployment | undefined;

  constructor(scope: Construct, id: string, props: WebStackProps) {
    super(scope, id, props);
    const { config } = props;
    const removalPolicy = config.storage.retainBuckets ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;

    // CloudFront standard logs need ACLs on the target bucket; S3 access logs share it.
    const logsBucket = new s3.Bucket(this, "WebLogs", {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
      lifecycleRules: [{ id: "expire-logs", expiration: Duration.days(90) }],
      removalPolicy,
    });
    Validations.of(logsBucket).acknowledge({
      id: "AwsSolutions-S1",
      reason:
        "This bucket is the log destination for CloudFront and the site bucket; logging it into itself would loop.",
    });

    this.siteBucket = new s3.Bucket(this, "SiteBucket", {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: logsBucket,
      serverAccessLogsPrefix: "site-bucket/",
      lifecycleRules: [
        { id: "abort-incomplete-uploads", abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
      removalPolicy,
    });

    const apiDomain = `${props.httpApi.apiId}.execute-api.${this.region}.${this.urlSuffix}`;
    const stripApiPrefix = new cloudfront.Function(this, "StripApiPrefix", {
      code: cloudfront.FunctionCode.fromInline(stripApiPrefixCode),
      runtime: cloudfront.FunctionRuntime.JS_2_0,
      comment: "prefloop: /api/* -> HTTP API routes",
    });
    const spaFallback = new cloudfront.Function(this, "SpaFallback", {
      code: cloudfront.FunctionCode.fromInline(spaFallbackCode),
      runtime: cloudfront.FunctionRuntime.JS_2_0,
      comment: "prefloop: client-side routes serve index.html",
    });

    this.distribution = new cloudfront.Distribution(this, "Site", {
      comment: `prefloop ${config.name}`,
      defaultRootObject: "index.html",
      priceClass: {
        "100": cloudfront.PriceClass.PRICE_CLASS_100,
        "200": cloudfront.PriceClass.PRICE_CLASS_200,
        ALL: cloudfront.PriceClass.PRICE_CLASS_ALL,
      }[config.web.priceClass],
      httpVersion: cloudfront.HttpVersion.HTTP2_AND_3,
      enableLogging: true,
      logBucket: logsBucket,
      logFilePrefix: "cloudfront/",
      defaultBehavior: {
        origin: origins.S3BucketOrigin.withOriginAccessControl(this.siteBucket),
        viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
        cachePolicy: cloudfront.CachePolicy.CACHING_OPTIMIZED,
        responseHeadersPolicy: cloudfront.ResponseHeadersPolicy.SECURITY_HEADERS,
        compress: true,
        functionAssociations: [
          { function: spaFallback, eventType: cloudfront.FunctionEventType.VIEWER_REQUEST },
        ],
      },
      additionalBehaviors: {
        "/api/*": {
          origin: new origins.HttpOrigin(apiDomain, {
            protocolPolicy: cloudfront.OriginProtocolPolicy.HTTPS_ONLY,
            originSslProtocols: [cloudfront.OriginSslPolicy.TLS_V1_2],
          }),
          viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
          allowedMethods: cloudfront.AllowedMethods.ALLOW_ALL,
          cachePolicy: cloudfront.CachePolicy.CACHING_DISABLED,
          originRequestPolicy: cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
          responseHeadersPolicy: cloudfront.ResponseHeadersPolicy.SECURITY_HEADERS,
          functionAssociations: [
            { function: stripApiPrefix, eventType: cloudfront.FunctionEventType.VIEWER_REQUEST },
          ],
        },
      },
    });
    Validations.of(this.distribution).acknowledge({
      id: "AwsSolutions-CFR1",
      reason: "The voting site is meant for a worldwide audience; there is no country to exclude.",
    });
    Validations.of(this.distribution).acknowledge({
      id: "AwsSolutions-CFR2",
      reason:
        "No WAF web ACL: the HTTP API stage throttles requests and votes need signed tokens; a WAF (us-east-1, per-request cost) can be attached later without changing the stacks.",
    });
    Validations.of(this.distribution).acknowledge({
      id: "AwsSolutions-CFR4",
      reason:
        "The distribution uses the default *.cloudfront.net certificate, for which CloudFront fixes the viewer TLS policy; a custom domain with TLSv1.2_2021 needs an ACM certificate the deployer owns.",
    });

    if (hasWebBuild(props.webDist)) {
      this.deployment = new s3deploy.BucketDeployment(this, "SiteContent", {
        sources: [s3deploy.Source.asset(props.webDist)],
        destinationBucket: this.siteBucket,
        distribution: this.distribution,
        distributionPaths: ["/*"],
        prune: true,
        memoryLimit: 512,
        logGroup: new logs.LogGroup(this, "SiteContentLogs", {
          retention: config.monitoring.logRetentionDays,
          removalPolicy: RemovalPolicy.DESTROY,
        }),
      });
      acknowledgeDeploymentHandler(this);
    } else {
      Annotations.of(this).addWarningV2(
        "prefloop:web-not-built",
        `No web build at ${props.webDist} (index.html missing): the site bucket is deployed empty. Run \`npm run build -w web\` before deploying.`,
      );
    }

    new CfnOutput(this, "SiteUrl", {
      description: "The prefloop site (voting page, leaderboard, experiments)",
      value: `https://${this.distribution.distributionDomainName}`,
    });
    new CfnOutput(this, "SiteBucketName", { value: this.siteBucket.bucketName });
  }
}

/**
 * BucketDeployment's handler (a CDK-provided singleton Lambda) copies the build from the CDK
 * assets bucket into the site bucket, prunes old files and invalidates the CloudFront cache.
 */
function acknowledgeDeploymentHandler(stack: Stack): void {
  const handler = stack.node.children.find((c) => c.node.id.startsWith("Custom::CDKBucketDeployment"));
  if (!handler) return;
  const ack = (id: string, reason: string) => Validations.of(handler).acknowledge({ id, reason });
  const copy =
    "CDK's BucketDeployment copies the web build from the CDK assets bucket into the site bucket and prunes files no longer in the build; the grant is limited to those two buckets.";
  ack(
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
    "AWS-maintained policy that only lets CDK's deployment handler write its own CloudWatch logs.",
  );
  for (const action of ["s3:GetBucket*", "s3:GetObject*", "s3:List*", "s3:Abort*", "s3:DeleteObject*"]) {
    ack(`AwsSolutions-IAM5[Action::${action}]`, copy);
  }
  ack(
    `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::cdk-${DefaultStackSynthesizer.DEFAULT_QUALIFIER}-assets-<AWS::AccountId>-<AWS::Region>/*]`,
    "Reads the uploaded web build from the CDK bootstrap assets bucket (keys are content hashes).",
  );
  const siteBucket = stack.node.findChild("SiteBucket").node.defaultChild as s3.CfnBucket;
  ack(
    `AwsSolutions-IAM5[Resource::<${stack.getLogicalId(siteBucket)}.Arn>/*]`,
    "Writes and prunes every file of the site bucket, which holds only the web build.",
  );
  ack(
    "AwsSolutions-IAM5[Resource::*]",
    "cloudfront:CreateInvalidation/GetInvalidation for the cache invalidation after upload, as granted by CDK's BucketDeployment.",
  );
  ack(
    "AwsSolutions-L1",
    "The runtime of CDK's BucketDeployment handler is chosen by aws-cdk-lib and moves with library upgrades.",
  );
}
