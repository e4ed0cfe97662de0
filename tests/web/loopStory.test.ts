/** The loop's "now" and "next" sentences, from the loop API's settings and rounds. */
import { describe, expect, it } from "vitest";
import { loopStory } from "../../web/src/admin/pages/loopStory.js";

const settings = {
  enabled: true,
  minVotes: 200,
  autoExperiment: true,
  objectives: [
    { objective: "dpo", space: "latent" },
    { objective: "cpo", space: "ncp" },
  ],
};
const round = (status: string, extra: Record<string, unknown> = {}) => ({
  id: "round_7",
  status,
  snapshotId: "snap_7",
  experimentId: null,
  note: null,
  trainingRunIds: ["run_a", "run_b"],
  ...extra,
});

describe("loopStory", () => {
  it.each([
    [
      { settings, rounds: [] },
      /no round has started yet/,
      /once 200 usable votes .* training dpo\/latent, cpo\/ncp/,
    ],
    [
      { settings, rounds: [round("training")] },
      /round_7: training 2 challengers from snapshot snap_7/,
      /an experiment against the champion starts/,
    ],
    [
      { settings: { ...settings, autoExperiment: false }, rounds: [round("training")] },
      /training 2 challengers/,
      /started by hand/,
    ],
    [
      { settings, rounds: [round("experimenting", { experimentId: "exp_1" })] },
      /A\/B-testing .* \(experiment exp_1\)/,
      /promotes a challenger once its interval clears the bar/,
    ],
    [
      { settings, rounds: [round("done", { note: "cpo-ncp promoted" }), round("done")] },
      /last round round_7 is done \(cpo-ncp promoted\)/,
      /once 200 usable votes/,
    ],
    [{ settings: { ...settings, enabled: false }, rounds: [round("training")] }, /switched off/, /Nothing/],
  ])("%#: now and next", (loop, now, next) => {
    const story = loopStory(loop);
    expect(story.now).toMatch(now);
    expect(story.next).toMatch(next);
  });

  it("reads the API's account of the base model: active experiment or round, votes, and its next step", () => {
    const model = (extra: Record<string, unknown>) => ({
      baseModelId: "tiny",
      champion: { adapterId: "ad_2" },
      usableVotesSinceChampionSnapshot: 57,
      activeRound: null,
      activeExperiment: null,
      next: {
        action: "collect_votes",
        detail: "143 more usable votes start the next round.",
        expectedAt: null,
      },
      ...extra,
    });
    const collecting = loopStory({ settings, rounds: [], baseModels: [model({})] });
    expect(collecting.now).toBe(
      "Collecting votes: 57 usable since the champion's snapshot; the champion is ad_2.",
    );
    expect(collecting.next).toBe("143 more usable votes start the next round.");
    const testing = loopStory({
      settings,
      rounds: [round("experimenting")],
      baseModels: [model({ activeExperiment: { id: "exp_1", name: "round 7", votes: 88, arms: [] } })],
    });
    expect(testing.now).toBe("A/B-testing on live traffic: round 7 (88 usable votes so far).");
    const training = loopStory({
      settings,
      rounds: [round("training")],
      baseModels: [model({ activeRound: { id: "round_7", status: "training", note: null, runs: [{}, {}] } })],
    });
    expect(training.now).toBe("Round round_7 is training: 2 training runs.");
  });

  it("prefers the API's own words when it gives them", () => {
    expect(
      loopStory({ settings, rounds: [round("training")], now: "Exporting.", next: "Training." }),
    ).toMatchObject({
      now: "Exporting.",
      next: "Training.",
    });
  });
});
