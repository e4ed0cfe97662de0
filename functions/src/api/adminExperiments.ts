/**
 * Experiments for admins: list, report (per arm votes, win rate with its anytime-valid interval
 * now and over time, state and reason, SRM, guardrails, per prompt category, decisions), start
 * (several arms), decide now, stop, promote. The lifecycle lives in functions/src/experiments.
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Deps } from "../deps.js";
import { decideRunningExperiment } from "../experiments/decide.js";
import { promoteArm } from "../experiments/promote.js";
import { experimentReport, listExperiments } from "../experiments/report.js";
import { ARM_NAME, MAX_ARMS, startExperiment } from "../experiments/start.js";
import { stopExperiment } from "../experiments/stop.js";
import { ApiError } from "../http/errors.js";
import { adminSecurity } from "./adminSession.js";
import { adminErrors, err, idParam, json } from "./routeDocs.js";
import type { VoterEnv } from "./voterSession.js";

const ArmSchema = z.object({
  name: z.string().regex(ARM_NAME).optional().openapi({ description: "Default: the adapter id, or `base`" }),
  adapterId: z
    .string()
    .max(128)
    .nullable()
    .openapi({ description: "A registered adapter, or null for the base model alone" }),
});

const StartSchema = z
  .object({
    name: z.string().trim().max(200).optional(),
    arms: z
      .array(ArmSchema)
      .min(2)
      .max(MAX_ARMS)
      .openapi({ description: "The control first (usually the champion), then the challengers" }),
    allocation: z.array(z.number().min(0).max(1_000_000)).max(MAX_ARMS).optional().openapi({
      description:
        "Weights of the challengers' share of experiment pairs (arm 0's entry unused); default equal",
    }),
    baseModelId: z.string().max(128).optional(),
    promptSetId: z.string().max(128).nullable().optional(),
    settings: z
      .object({
        margin: z.number().min(0).max(0.49).optional(),
        minVotes: z.number().int().min(1).max(10_000_000).optional(),
        maxVotes: z.number().int().min(1).max(10_000_000).optional(),
        alpha: z.number().min(0.0001).max(0.5).optional(),
      })
      .optional()
      .openapi({
        description: "Overrides of EXPERIMENT_MARGIN, _MIN_VOTES, _MAX_VOTES, _ALPHA, frozen at start",
      }),
  })
  .openapi("ExperimentStart");

const StartedSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    baseModelId: z.string(),
    arms: z.array(z.object({ name: z.string(), adapterId: z.string().nullable() })),
    allocation: z.array(z.number()),
    settings: z.record(z.string(), z.number()),
  })
  .openapi("ExperimentStarted");

const DecisionSchema = z.object({ action: z.string(), reason: z.string() }).nullable();

const SummarySchema = z
  .object({
    id: z.string(),
    name: z.string(),
    status: z.enum(["draft", "running", "decided", "stopped"]),
    origin: z.string(),
    roundId: z.string().nullable(),
    baseModelId: z.string(),
    arms: z.array(z.object({ name: z.string(), adapterId: z.string().nullable() })),
    votes: z.number().int(),
    decision: DecisionSchema,
    createdAt: z.string(),
    startedAt: z.string().nullable(),
    decidedAt: z.string().nullable(),
  })
  .openapi("ExperimentSummary");

const IntervalSchema = { estimate: z.number(), lower: z.number(), upper: z.number() };

const ArmStatisticsSchema = z
  .object({
    arm: z.string(),
    n: z.number().int().openapi({ description: "Usable votes" }),
    wins: z.number().int(),
    losses: z.number().int(),
    ties: z.number().int(),
    bothBad: z.number().int(),
    voters: z.number().int(),
    ...IntervalSchema,
    eValue: z.number().openapi({ description: "Mixture e-value against P = ½" }),
    pValue: z.number().openapi({ description: "Always-valid p-value against P = ½ at this look" }),
    chanceToWin: z
      .number()
      .openapi({ description: "Bayesian P(p > ½): a second reading, never the decision" }),
    positionEffect: z.object({ leftWinRate: z.number(), ...IntervalSchema }),
  })
  .openapi({
    description:
      "estimate = win rate of the challenger (ties and both-bad ½); lower/upper = its anytime-valid interval at α / challengers",
  });

const PathPointSchema = z.object({
  ...IntervalSchema,
  n: z.number().int(),
  voters: z.number().int(),
  sigma: z.number(),
  at: z.number().optional().openapi({ description: "Time of the look's last vote (ms since the epoch)" }),
  pValue: z.number().openapi({ description: "Running always-valid p-value against ½" }),
});

const ReportSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    status: z.string(),
    origin: z.string(),
    roundId: z.string().nullable(),
    baseModelId: z.string(),
    promptSetId: z.string().nullable(),
    createdAt: z.string(),
    startedAt: z.string().nullable(),
    decidedAt: z.string().nullable(),
    settings: z.record(z.string(), z.number()),
    method: z.object({
      name: z.string(),
      formula: z.string(),
      tuningVotes: z.number(),
      priorVotes: z.number(),
    }),
    alphaPerArm: z.number(),
    votes: z.number().int().openapi({ description: "Usable votes of the experiment" }),
    arms: z.array(
      z.object({
        name: z.string(),
        adapterId: z.string().nullable(),
        role: z.enum(["control", "challenger"]),
        allocation: z.number(),
        state: z
          .string()
          .nullable()
          .openapi({ description: "collecting, promote, retire or stopped (challengers)" }),
        reason: z.string().nullable(),
        statistics: ArmStatisticsSchema.nullable(),
        overTime: z
          .array(PathPointSchema)
          .openapi({ description: "The interval after successive votes of this arm" }),
        guardrails: z.object({
          generations: z.number().int(),
          failed: z.number().int(),
          failureRate: z.number().nullable(),
          latencyMedianMs: z.number().nullable(),
          bothBadRate: z.number().nullable(),
          alarms: z.array(
            z.object({
              arm: z.string(),
              code: z.string(),
              reason: z.string(),
              value: z.number(),
              limit: z.number(),
            }),
          ),
        }),
      }),
    ),
    srm: z.array(z.object({ check: z.string(), pValue: z.number(), alarm: z.boolean() })),
    decision: z.object({ action: z.string(), reason: z.string(), at: z.string().nullable() }).nullable(),
    ruleNow: z
      .object({ action: z.string(), arm: z.string().nullable(), reason: z.string(), bar: z.number() })
      .nullable()
      .openapi({
        description: "What the rule says on the votes now (a running experiment acts on it at the next tick)",
      }),
    byCategory: z.array(
      z.object({ category: z.string(), votes: z.number().int(), arms: z.array(ArmStatisticsSchema) }),
    ),
    decisions: z.array(
      z.object({
        id: z.string(),
        action: z.string(),
        arm: z.string().nullable(),
        reason: z.string(),
        actor: z.string(),
        numbers: z.record(z.string(), z.unknown()),
        at: z.string(),
      }),
    ),
  })
  .openapi("ExperimentReport");

const listRoute = createRoute({
  method: "get",
  path: "/api/admin/experiments",
  tags: ["experiments"],
  summary: "Experiments, newest first, with their usable-vote counts and latest decision",
  security: adminSecurity,
  request: {
    query: z.object({
      status: z.enum(["draft", "running", "decided", "stopped"]).optional(),
      limit: z.coerce.number().int().min(1).max(500).default(100),
    }),
  },
  responses: { 200: json(z.object({ experiments: z.array(SummarySchema) }), "Experiments"), ...adminErrors },
});

const getRoute = createRoute({
  method: "get",
  path: "/api/admin/experiments/{id}",
  tags: ["experiments"],
  summary:
    "One experiment: per arm results with anytime-valid intervals, SRM, guardrails, per category, decisions",
  security: adminSecurity,
  request: { params: idParam },
  responses: { 200: json(ReportSchema, "The experiment"), 404: err("No such experiment"), ...adminErrors },
});

const startRoute = createRoute({
  method: "post",
  path: "/api/admin/experiments",
  tags: ["experiments"],
  summary: "Start an experiment between registered adapters (the control first, one or more challengers)",
  security: adminSecurity,
  request: { body: { content: { "application/json": { schema: StartSchema } }, required: true } },
  responses: {
    201: json(StartedSchema, "Running"),
    400: err("Invalid arms, allocation or settings"),
    404: err("Unknown adapter, base model or prompt set"),
    409: err("An adapter is retired"),
    ...adminErrors,
  },
});

const ReasonSchema = z.object({ reason: z.string().trim().max(500).optional() });

const decideRoute = createRoute({
  method: "post",
  path: "/api/admin/experiments/{id}/decide",
  tags: ["experiments"],
  summary: "Apply the decision rule now (the scheduler tick does this every LOOP_CHECK_SECONDS)",
  security: adminSecurity,
  request: { params: idParam },
  responses: {
    200: json(
      z.object({ action: z.string(), arm: z.string().nullable(), reason: z.string(), recorded: z.boolean() }),
      "The decision",
    ),
    404: err("No such experiment"),
    409: err("Not running"),
    ...adminErrors,
  },
});

const stopRoute = createRoute({
  method: "post",
  path: "/api/admin/experiments/{id}/stop",
  tags: ["experiments"],
  summary: "Stop a running experiment (no adapter changes status)",
  security: adminSecurity,
  request: {
    params: idParam,
    body: { content: { "application/json": { schema: ReasonSchema } }, required: false },
  },
  responses: {
    200: json(z.object({ id: z.string(), status: z.string() }), "Stopped"),
    404: err("No such experiment"),
    409: err("Not running"),
    ...adminErrors,
  },
});

const promoteRoute = createRoute({
  method: "post",
  path: "/api/admin/experiments/{id}/promote",
  tags: ["experiments"],
  summary:
    "Promote an arm now, whatever the rule says (the control: keep the champion, retire the challengers)",
  security: adminSecurity,
  request: {
    params: idParam,
    body: {
      content: {
        "application/json": {
          schema: z.object({ arm: z.string().max(64), reason: z.string().trim().max(500).optional() }),
        },
      },
      required: true,
    },
  },
  responses: {
    200: json(
      z.object({ id: z.string(), status: z.string(), promotedAdapterId: z.string().nullable() }),
      "Promoted",
    ),
    400: err("Unknown arm"),
    404: err("No such experiment"),
    409: err("Not running"),
    ...adminErrors,
  },
});

export function registerAdminExperimentRoutes(app: OpenAPIHono<VoterEnv>, deps: Deps): void {
  app.openapi(listRoute, async (c) => {
    const q = c.req.valid("query");
    return c.json({ experiments: await listExperiments(deps.db, { status: q.status, limit: q.limit }) }, 200);
  });

  app.openapi(getRoute, async (c) => {
    const report = await experimentReport(deps.db, deps.config, c.req.valid("param").id);
    if (!report) throw new ApiError(404, "experiment_not_found", "There is no such experiment.");
    return c.json(report, 200);
  });

  app.openapi(startRoute, async (c) => {
    const body = c.req.valid("json");
    const started = await startExperiment(deps, body, { origin: "manual", actor: "admin" });
    return c.json({ ...started, settings: { ...started.settings } }, 201);
  });

  app.openapi(decideRoute, async (c) => {
    const id = c.req.valid("param").id;
    const d = await decideRunningExperiment(deps, id, "admin");
    if (!d) throw new ApiError(409, "experiment_not_running", "There is no running experiment with this id.");
    return c.json({ action: d.action, arm: d.arm, reason: d.reason, recorded: d.recorded }, 200);
  });

  app.openapi(stopRoute, async (c) => {
    const id = c.req.valid("param").id;
    const body = (await c.req.json().catch(() => ({}))) as { reason?: unknown };
    const reason = typeof body.reason === "string" ? body.reason.slice(0, 500) : undefined;
    return c.json(await stopExperiment(deps, id, reason), 200);
  });

  app.openapi(promoteRoute, async (c) => {
    const { arm, reason } = c.req.valid("json");
    return c.json(await promoteArm(deps, c.req.valid("param").id, arm, reason), 200);
  });
}
