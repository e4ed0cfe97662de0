/**
 * Pair design as pure functions: how a pool pair is planned (paired design for A/B experiments),
 * which generation is shown on the left, what a vote means in terms of the two generations, how
 * many pairs a pool is short of, and quality-control flags of a vote.
 */

export type Side = "a" | "b";
export type Choice = "left" | "right" | "tie" | "both_bad";
export type Outcome = "a" | "b" | "tie" | "both_bad";

/** A uniform random number in [0, 1); injected so plans are reproducible in tests. */
export type Random = () => number;

/** Which generation goes on the left: a fair coin, recorded on the pair when it is served. */
export function chooseLeft(random: Random): Side {
  return random() < 0.5 ? "a" : "b";
}

/** The vote in terms of the two generations: left/right undone with the recorded `leftIs`. */
export function outcomeOf(choice: Choice, leftIs: Side): Outcome {
  if (choice === "tie" || choice === "both_bad") return choice;
  const other: Side = leftIs === "a" ? "b" : "a";
  return choice === "left" ? leftIs : other;
}

export interface Arm {
  name: string;
  adapterId: string | null;
}

/**
 * The two arms of an experiment pair: the control (arm 0) against a challenger drawn by the
 * allocation weights of the other arms. Two-arm experiments always give [0, 1].
 */
export function pickArms(
  arms: readonly Arm[],
  allocation: readonly number[],
  random: Random,
): [number, number] {
  if (arms.length < 2) throw new Error("an experiment needs at least two arms");
  const weights = arms.map((_, i) => (i === 0 ? 0 : Math.max(0, allocation[i] ?? 0)));
  const total = weights.reduce((s, w) => s + w, 0);
  if (total <= 0) return [0, 1 + Math.floor(random() * (arms.length - 1))];
  let r = random() * total;
  for (let i = 1; i < arms.length; i++) {
    r -= weights[i] ?? 0;
    if (r < 0) return [0, i];
  }
  return [0, arms.length - 1];
}

export interface GenerationPlan {
  adapterId: string | null;
  seed: number;
  /** The experiment arm this side renders (experiment pairs only). */
  arm: string | null;
  /** A degradation applied after rendering (the degraded side of a gold pair), e.g. `blur`. */
  degradation: Degradation | null;
}

export type PairKind = "data" | "experiment" | "gold";

export interface PairPlan {
  promptId: string;
  kind: PairKind;
  a: GenerationPlan;
  b: GenerationPlan;
  /** Gold pairs: the clean side, the known better answer. */
  goldAnswer: Side | null;
}

/** How the degraded side of a gold pair is spoiled (applied by the generator after decoding). */
export const DEGRADATIONS = ["blur"] as const;
export type Degradation = (typeof DEGRADATIONS)[number];

/** Largest seed the generation contract and diffusers' generators both accept comfortably. */
export const MAX_SEED = 2 ** 31 - 1;

export function randomSeed(random: Random): number {
  return Math.floor(random() * (MAX_SEED + 1));
}

const side = (adapterId: string | null, seed: number, arm: string | null = null): GenerationPlan => ({
  adapterId,
  seed,
  arm,
  degradation: null,
});

/**
 * Plans one pair for a prompt:
 * - `experiment`: both images share prompt and seed and differ only in the arm's adapter (paired
 *   design): the control (arm 0) on side a, a challenger drawn by the allocation on side b; which
 *   side is shown left is drawn when the pair is served;
 * - `model` (data pairs): both from the same model (`adapterId`, the champion) with two seeds;
 * - `gold`: one generation and a degraded copy of it (same prompt, seed and model); the clean
 *   side is drawn at random and recorded as the answer.
 */
export function planPair(
  promptId: string,
  source:
    | { kind: "experiment"; arms: readonly Arm[]; allocation: readonly number[] }
    | { kind: "model"; adapterId: string | null }
    | { kind: "gold"; adapterId: string | null; degradation: Degradation },
  random: Random,
): PairPlan {
  if (source.kind === "experiment") {
    const [i, j] = pickArms(source.arms, source.allocation, random);
    const seed = randomSeed(random);
    const [control, challenger] = [source.arms[i] as Arm, source.arms[j] as Arm];
    return {
      promptId,
      kind: "experiment",
      a: side(control.adapterId, seed, control.name),
      b: side(challenger.adapterId, seed, challenger.name),
      goldAnswer: null,
    };
  }
  if (source.kind === "gold") {
    const seed = randomSeed(random);
    const clean = side(source.adapterId, seed);
    const degraded = { ...side(source.adapterId, seed), degradation: source.degradation };
    const goldAnswer: Side = random() < 0.5 ? "a" : "b";
    return goldAnswer === "a"
      ? { promptId, kind: "gold", a: clean, b: degraded, goldAnswer }
      : { promptId, kind: "gold", a: degraded, b: clean, goldAnswer };
  }
  const seedA = randomSeed(random);
  let seedB = randomSeed(random);
  if (seedB === seedA) seedB = (seedA + 1) % (MAX_SEED + 1);
  return {
    promptId,
    kind: "data",
    a: side(source.adapterId, seedA),
    b: side(source.adapterId, seedB),
    goldAnswer: null,
  };
}

/**
 * How many pairs to add so that ready + generating pairs reach `depth`, at most `maxBatch` at a time.
 */
export function poolShortfall(ready: number, generating: number, depth: number, maxBatch: number): number {
  return Math.max(0, Math.min(maxBatch, depth - ready - generating));
}

/** Votes faster than this are flagged: nobody compares two images in under 0.4 s. */
export const TOO_FAST_MS = 400;

/** Quality-control flags of one vote; flagged votes are stored but left out of training. */
export function voteFlags(decisionMs: number | null): string[] {
  if (decisionMs === null) return ["no_decision_time"];
  return decisionMs < TOO_FAST_MS ? ["too_fast"] : [];
}
