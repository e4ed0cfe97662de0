/**
 * cdk-nag (AwsSolutions) over the whole platform, both environments, with and without a web build:
 * zero unacknowledged findings, and every acknowledgement says specifically why.
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { App, Stack, Validations } from "aws-cdk-lib";
import * as s3 from "aws-cdk-lib/aws-s3";
import * as cxapi from "aws-cdk-lib/cx-api";
import { AwsSolutionsChecks } from "cdk-nag";
import type { IConstruct } from "constructs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fakeWebBuild, removeTemporaryFolders, type Synthesized, synthPlatform } from "./harness.js";

interface Report {
  pluginReports: { pluginName: string; violations: { ruleName: string; severity: string }[] }[];
}

function validationReport(s: Synthesized): Report {
  return JSON.parse(readFileSync(path.join(s.outdir, cxapi.VALIDATION_REPORT_FILE), "utf8")) as Report;
}

function acknowledgements(root: IConstruct): { path: string; id: string; reason: string }[] {
  const found: { path: string; id: string; reason: string }[] = [];
  for (const c of root.node.findAll()) {
    for (const entry of c.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
      for (const [id, reason] of Object.entries(entry.data as Record<string, string>)) {
        found.push({ path: c.node.path, id, reason });
      }
    }
  }
  return found;
}

afterAll(removeTemporaryFolders);

const cases = [
  { env: "dev", web: false, generator: "lambda" },
  { env: "prod", web: true, generator: "lambda" },
  { env: "prod", web: false, generator: "ecs-gpu" },
] as const;

describe.each(cases)(
  "cdk-nag AwsSolutions on $env (web build: $web, generator: $generator)",
  ({ env, web, generator }) => {
    let synthesized: Synthesized;
    beforeAll(() => {
      // app.synth() throws with the full report when an error-level finding is unacknowledged.
      synthesized = synthPlatform(env, {
        webDist: web ? fakeWebBuild() : "/nonexistent/web/dist",
        configure: (c) => ({ ...c, generator: { ...c.generator, kind: generator } }),
      });
    });

    it("synthesizes every stack with zero unacknowledged findings of any severity", () => {
      const parts = ["api", "data", "operations", "queues", "training", "web"];
      if (generator === "ecs-gpu") parts.push("generator");
      expect(synthesized.assembly.stacks.map((s) => s.stackName).sort()).toEqual(
        parts.sort().map((p) => `prefloop-${env}-${p}`),
      );
      const nag = validationReport(synthesized).pluginReports.filter((r) =>
        r.pluginName.includes("AwsSolutions"),
      );
      expect(nag.flatMap((r) => r.violations.map((v) => `${v.severity} ${v.ruleName}`))).toEqual([]);
    });

    it("gives every acknowledgement a specific reason", () => {
      const acks = acknowledgements(synthesized.app).filter((a) => a.id.includes("AwsSolutions-"));
      expect(acks.length).toBeGreaterThan(10);
      for (const ack of acks) {
        expect(ack.reason.length, `${ack.path} ${ack.id}`).toBeGreaterThanOrEqual(50);
        expect(ack.reason, `${ack.path} ${ack.id}`).not.toMatch(/^(n\/a|todo|ignore|suppress|not needed)/i);
      }
      // No blanket acknowledgement of a whole rule family on a stack.
      const stackPaths = new Set(synthesized.assembly.stacks.map((s) => s.hierarchicalId));
      for (const ack of acks) expect(stackPaths.has(ack.path), `${ack.id} on a whole stack`).toBe(false);
    });

    it("acknowledges wildcard resources only for named key prefixes or actions without resource scoping", () => {
      const wildcard = acknowledgements(synthesized.app).filter((a) => a.id.includes("IAM5[Resource::"));
      for (const ack of wildcard) {
        const resource = ack.id.slice(ack.id.indexOf("Resource::") + "Resource::".length, -1);
        const allowed =
          resource === "*" ||
          /^arn:<AWS::Partition>:s3:::prefloop-(dev|prod)-data-<AWS::AccountId>-<AWS::Region>\/[a-z]+\/\*$/.test(
            resource,
          ) ||
          /^<[A-Za-z0-9]+\.Arn>(\/\*|:\*)$/.test(resource) ||
          resource.startsWith("arn:<AWS::Partition>:s3:::cdk-") ||
          // jobs the scheduler submits (their ids exist only after SubmitJob)
          resource === "arn:<AWS::Partition>:batch:<AWS::Region>:<AWS::AccountId>:job/*";
        expect(allowed, `${ack.path}: ${resource}`).toBe(true);
      }
    });
  },
);

describe("cdk-nag is really checking", () => {
  it("fails synthesis on an unacknowledged finding", () => {
    const app = new App({ context: { "aws:cdk:bundling-stacks": [] } });
    const stack = new Stack(app, "Control");
    new s3.Bucket(stack, "Open", { blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL });
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    expect(() => app.synth()).toThrow(/AwsSolutions-S10/);
  });
});
