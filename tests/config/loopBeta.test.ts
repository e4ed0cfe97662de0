/**
 * LOOP_BETA: one β for every objective (as before) or entries per objective and per
 * objective:space; the most specific entry wins, and the training job, the run's record (and so
 * the worker's manifest, which copies the job's β) carry the β the challenger trains with.
 */
import { describe, expect, it } from "vitest";
import {
  ConfigError,
  type LoopObjective,
  type LoopSpace,
  loadConfig,
  loopBeta,
} from "../../functions/src/config.js";
import { planRun } from "../../functions/src/training/runs.js";

const all: [LoopObjective, LoopSpace][] = (["dpo", "cpo", "sft", "rpo", "kto"] as const).flatMap((o) =>
  (["latent", "ncp"] as const).map((s): [LoopObjective, LoopSpace] => [o, s]),
);

/** β of every objective:space under this LOOP_BETA, as `{ "dpo:latent": 5000, … }`. */
function betas(raw: string | undefined): Record<string, number> {
  const { beta } = loadConfig(raw === undefined ? {} : { LOOP_BETA: raw }).loop;
  return Object.fromEntries(all.map(([o, s]) => [`${o}:${s}`, loopBeta(beta, o, s)]));
}

const every = (b: number) => Object.fromEntries(all.map(([o, s]) => [`${o}:${s}`, b]));

describe("LOOP_BETA", () => {
  it.each([
    ["unset: the reference β for every objective", undefined, every(5000)],
    ["one number: every objective (as before)", "2500", every(2500)],
    ["a number in exponent form", " 1e3 ", every(1000)],
    [
      "per objective; the others keep the default",
      "dpo:5000,cpo:2500",
      { ...every(5000), "cpo:latent": 2500, "cpo:ncp": 2500 },
    ],
    [
      "objective:space beats objective, objective beats the default",
      "4000, cpo:2500, cpo:ncp:1000",
      { ...every(4000), "cpo:latent": 2500, "cpo:ncp": 1000 },
    ],
    [
      "objective:space alone; the order of entries does not matter",
      "kto:ncp:300,2000",
      { ...every(2000), "kto:ncp": 300 },
    ],
    ["fractions", "rpo:0.5", { ...every(5000), "rpo:latent": 0.5, "rpo:ncp": 0.5 }],
  ])("%s (%j)", (_, raw, expected) => {
    expect(betas(raw)).toEqual(expected);
  });

  it.each([
    ["0", 'entry "0" has β "0": must be a number > 0'],
    ["-5", 'entry "-5" has β "-5": must be a number > 0'],
    ["abc", 'entry "abc" has β "abc": must be a number > 0'],
    ["dpo", 'entry "dpo" has β "dpo": must be a number > 0'],
    ["dpo:", 'entry "dpo:" has β "": must be a number > 0'],
    ["dpo:0x10", 'entry "dpo:0x10" has β "0x10": must be a number > 0'],
    ["dpo:Infinity", 'entry "dpo:Infinity" has β "Infinity": must be a number > 0'],
    ["ppo:100", 'entry "ppo:100" names an unknown objective "ppo" (dpo, cpo, sft, rpo, kto)'],
    ["cpo:pixel:100", 'entry "cpo:pixel:100" names an unknown space "pixel" (latent, ncp)'],
    ["latent:100", 'entry "latent:100" names an unknown objective "latent"'],
    ["cpo:ncp:x:1", 'entry "cpo:ncp:x:1" must be β, objective:β or objective:space:β'],
    ["dpo:5000,,cpo:1", "has an empty entry (number 2)"],
    ["dpo:5000,", "has an empty entry (number 2)"],
    ["dpo:5000,dpo:2500", 'entry "dpo:2500" repeats the β of dpo'],
    ["cpo:ncp:1,cpo:ncp:2", 'entry "cpo:ncp:2" repeats the β of cpo:ncp'],
    ["100,200", 'entry "200" repeats the default β'],
  ])("refuses %j with one line naming LOOP_BETA", (raw, message) => {
    let err: unknown;
    try {
      loadConfig({ LOOP_BETA: raw });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const text = (err as Error).message;
    expect(text.startsWith(`LOOP_BETA ${message}`)).toBe(true);
    expect(text).toContain(`(got ${JSON.stringify(raw)})`);
    expect(text).not.toContain("\n");
  });

  it("the job and the run's record of each challenger carry its own β", () => {
    const config = loadConfig({
      LOOP_OBJECTIVES: "dpo:latent,cpo:latent,cpo:ncp",
      LOOP_BETA: "dpo:5000,cpo:2500,cpo:ncp:1000",
    });
    const base = {
      id: "tiny",
      name: "tiny",
      family: "sd",
      sha256: "0".repeat(64),
      diffusersUri: "/models/tiny",
      onnxUri: null,
      width: 64,
      height: 64,
      createdAt: new Date(),
    };
    const planned = config.loop.objectives.map(({ objective, space }) =>
      planRun(
        { config },
        {
          roundId: null,
          base,
          snapshot: { id: "snap_1", blobPrefix: "snapshots/snap_1/" },
          parent: null,
          objective,
          space,
        },
      ),
    );
    expect(planned.map((p) => [p.job.payload.objective, p.job.payload.space, p.job.payload.beta])).toEqual([
      ["dpo", "latent", 5000],
      ["cpo", "latent", 2500],
      ["cpo", "ncp", 1000],
    ]);
    for (const p of planned) expect(p.run.hyperParameters?.beta).toBe(p.job.payload.beta);
  });
});
