/**
 * The loop's state in words, from its settings and rounds as the API gives them: the newest
 * round's status says what the loop is doing, the rules in the settings say what comes next.
 * (Presentation only: every number is the API's.)
 */
import { listIn, num, pick, str } from "../view.js";

type Row = Record<string, unknown>;

export interface LoopStory {
  now: string;
  next: string;
  round: Row | null;
}

export function loopStory(loop: unknown): LoopStory {
  const givenNow = str(loop, "now", "state.now");
  const givenNext = str(loop, "next", "state.next");
  const settings = (pick<Row>(loop, "settings") ?? {}) as Row;
  const rounds = listIn<Row>(loop, "rounds");
  const round = rounds[0] ?? null;
  const minVotes = num(settings, "minVotes");
  const enabled = pick(settings, "enabled") !== false;
  const challengers = listIn<Row>(settings, "objectives")
    .map((o) => `${str(o, "objective")}/${str(o, "space")}`)
    .join(", ");
  const status = str(round, "status");
  const runs = listIn<string>(pick(round, "trainingRunIds")).length;
  let now: string;
  let next: string;
  if (!enabled) {
    now = "The loop is switched off (LOOP_ENABLED=false).";
    next = "Nothing, until it is switched on; rounds can still be started by hand.";
  } else if (status === "training") {
    now = `Round ${str(round, "id")}: training ${runs || "its"} challenger${runs === 1 ? "" : "s"} from snapshot ${str(round, "snapshotId") ?? "?"}.`;
    next =
      pick(settings, "autoExperiment") === false
        ? "When training finishes, the adapters are registered; experiments are started by hand (LOOP_AUTO_EXPERIMENT=false)."
        : "When training finishes, the adapters are registered and an experiment against the champion starts.";
  } else if (status === "experimenting") {
    now = `Round ${str(round, "id")}: A/B-testing its challengers against the champion on live traffic (experiment ${str(round, "experimentId") ?? "?"}).`;
    next =
      "The experiment promotes a challenger once its interval clears the bar, or retires it; then a new round can start.";
  } else {
    now = round
      ? `Waiting for votes: the last round ${str(round, "id")} is ${status ?? "finished"}${str(round, "note") ? ` (${str(round, "note")})` : ""}.`
      : "Waiting for votes: no round has started yet.";
    next = `A new round starts once ${minVotes ?? "enough"} usable votes newer than the champion's snapshot are in${challengers ? `, training ${challengers}` : ""}.`;
  }
  // The API's own account of each base model, when it gives one, beats the reading of its rounds.
  const model = listIn<Row>(loop, "baseModels")[0];
  if (model) {
    const r = pick<Row>(model, "activeRound");
    const e = pick<Row>(model, "activeExperiment");
    const champion = str(model, "champion.adapterId");
    if (e) {
      now = `A/B-testing on live traffic: ${str(e, "name") ?? str(e, "id")} (${num(e, "votes") ?? 0} usable votes so far).`;
    } else if (r) {
      const runCount = listIn(pick(r, "runs")).length;
      now = `Round ${str(r, "id")} is ${str(r, "status") ?? "active"}${runCount ? `: ${runCount} training run${runCount === 1 ? "" : "s"}` : ""}${str(r, "note") ? ` (${str(r, "note")})` : ""}.`;
    } else if (enabled) {
      now = `Collecting votes: ${num(model, "usableVotesSinceChampionSnapshot") ?? 0} usable since the champion's snapshot; the champion is ${champion ?? `the base model ${str(model, "baseModelId")}`}.`;
    }
    const detail = str(model, "next.detail");
    const at = str(model, "next.expectedAt");
    if (detail)
      next = `${detail}${at ? ` (expected ${new Date(at).toLocaleString("en-GB", { timeStyle: "short", dateStyle: "medium" })})` : ""}`;
  }
  return { now: givenNow ?? now, next: givenNext ?? next, round };
}
