/**
 * Builds the platform app once per test file, offline: bundling skipped (no esbuild run, no
 * Docker), cdk.json's feature flags, cdk-nag on. Returns the templates and the validation report.
 */
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import type { CloudAssembly } from "aws-cdk-lib/cx-api";
import { entries } from "../../stacks/src/api-stack.js";
import { configFor, type EnvironmentName, type PlatformConfig } from "../../stacks/src/config.js";
import { buildPlatform, type Platform, type PlatformOptions, repoRoot } from "../../stacks/src/platform.js";

const temporary: string[] = [];

/** A fresh temporary folder, removed by removeTemporaryFolders(). */
export function temporaryFolder(prefix: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  temporary.push(dir);
  return dir;
}

/** Removes every folder this file's tests made (call in afterAll). */
export function removeTemporaryFolders(): void {
  for (const dir of temporary.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export const stacksDir = path.join(repoRoot, "stacks");
export const cdkJson = JSON.parse(readFileSync(path.join(stacksDir, "cdk.json"), "utf8")) as {
  app: string;
  context: Record<string, unknown>;
};

export interface Synthesized {
  readonly app: App;
  readonly platform: Platform;
  readonly assembly: CloudAssembly;
  /** One per stack; `generator` only where the platform has that stack. */
  readonly templates: Record<Exclude<keyof Platform, "generator">, Template> & {
    readonly generator?: Template;
  };
  readonly outdir: string;
}

/** A folder holding a built web app (index.html), for the "web build present" case. */
export function fakeWebBuild(): string {
  const dir = temporaryFolder("prefloop-web-");
  mkdirSync(path.join(dir, "assets"));
  writeFileSync(path.join(dir, "index.html"), "<!doctype html><title>prefloop</title>");
  writeFileSync(path.join(dir, "assets", "app.js"), "console.log('prefloop')");
  return dir;
}

/** Files in the repository that the stacks build from (entries, Dockerfiles, lock file). */
export const requiredInputs = [
  ...Object.values(entries).map((file) => `functions/src/entries/${file}`),
  "functions/Dockerfile.generator",
  "functions/Dockerfile.generator-gpu",
  "functions/src/entries/generator-service.ts",
  "gpu-worker/Dockerfile",
  "package-lock.json",
];

export function missingInputs(root = repoRoot): string[] {
  return requiredInputs.filter((file) => !existsSync(path.join(root, file)));
}

/**
 * The repository root when every input exists; otherwise a copy of the inputs that do exist with
 * minimal stand-ins for the missing ones (runtime entries are written in parallel with the stacks).
 * Bundling is skipped in these tests, so the stand-ins' content is never built.
 */
export function platformRoot(): string {
  const missing = missingInputs();
  if (missing.length === 0) return repoRoot;
  console.warn(`stacks tests: stand-ins for missing inputs: ${missing.join(", ")}`);
  const root = temporaryFolder("prefloop-root-");
  for (const file of [...requiredInputs, "package.json", "tsconfig.base.json", "functions/package.json"]) {
    const from = path.join(repoRoot, file);
    const to = path.join(root, file);
    mkdirSync(path.dirname(to), { recursive: true });
    if (existsSync(from)) copyFileSync(from, to);
    else if (file.endsWith(".ts")) writeFileSync(to, "export const handler = async () => ({});\n");
    else writeFileSync(to, "FROM public.ecr.aws/docker/library/python:3.12-slim\n");
  }
  for (const dir of ["migrations", "contracts"]) {
    if (existsSync(path.join(repoRoot, dir)))
      cpSync(path.join(repoRoot, dir), path.join(root, dir), { recursive: true });
  }
  return root;
}

export function synthPlatform(
  env: EnvironmentName,
  options: Omit<PlatformOptions, "config"> & {
    readonly context?: Record<string, unknown>;
    /** Changes to the environment's config (e.g. another generator kind). */
    readonly configure?: (config: PlatformConfig) => PlatformConfig;
  } = {},
): Synthesized {
  const outdir = temporaryFolder(`prefloop-cdk-${env}-`);
  const app = new App({
    outdir,
    context: { ...cdkJson.context, env, "aws:cdk:bundling-stacks": [], ...options.context },
  });
  const config = (options.configure ?? ((c) => c))(configFor(env));
  const platform = buildPlatform(app, { repoRoot: platformRoot(), ...options, config });
  const assembly = app.synth();
  // Read the templates from this one synthesis (Template.fromStack would synthesize again).
  const templates = Object.fromEntries(
    Object.entries(platform).map(([part, stack]) => [
      part,
      Template.fromJSON(assembly.getStackArtifact(stack.artifactId).template as Record<string, unknown>),
    ]),
  ) as Synthesized["templates"];
  return { app, platform, assembly, templates, outdir };
}

/** The Docker images a stack's asset manifest asks the deploy to build. */
export function dockerImages(s: Synthesized, part: keyof Synthesized["platform"]) {
  const stack = s.platform[part];
  if (!stack) throw new Error(`no ${part} stack in this platform`);
  const manifest = JSON.parse(
    readFileSync(path.join(s.outdir, `${stack.artifactId}.assets.json`), "utf8"),
  ) as { dockerImages?: Record<string, { source: { dockerFile?: string; platform?: string } }> };
  return Object.values(manifest.dockerImages ?? {}).map(({ source }) => ({
    dockerFile: source.dockerFile,
    platform: source.platform,
  }));
}
