/**
 * The platform's statistics, pure functions over plain rows (STATISTICS.md explains each choice):
 * - A/B on paired votes: `experimentStatistics`, `confidenceSequencePath`;
 * - sample ratio mismatch: `sampleRatioMismatch`;
 * - the leaderboard: `bradleyTerry`, `bootstrapLeaderboard`, `rankByIntervals`, `onlineElo`;
 * - rater quality: `assessRater` and its e-processes.
 */

export { bernoulliEProcess, type EProcessResult } from "./bernoulliEProcess.js";
export {
  type Battle,
  type BradleyTerryFit,
  bradleyTerry,
  ELO_SCALE,
  type PairCount,
  pairCounts,
} from "./bradleyTerry.js";
export { ClusteredMean, type ClusteredMeanSummary, clusteredMean } from "./clusteredMean.js";
export {
  type BoundaryOptions,
  confidenceInterval,
  confidenceSequencePath,
  DEFAULT_TUNING_VOTES,
  type Interval,
  mixtureEValue,
  mixtureHalfWidth,
  mixtureRho,
  type PathPoint,
  PRIOR_VOTER_VARIANCE,
  PRIOR_VOTERS,
  regularizedVariance,
} from "./confidenceSequence.js";
export {
  type ArmStatistics,
  type ExperimentInput,
  type ExperimentOutcome,
  type ExperimentStatistics,
  experimentStatistics,
  leftOutcome,
  outcomeValue,
  type VoteResult,
} from "./experimentStatistics.js";
export {
  bootstrapLeaderboard,
  type Leaderboard,
  type LeaderboardRow,
  type LeaderboardVote,
  quantile,
  rankByIntervals,
} from "./leaderboard.js";
export { onlineElo } from "./onlineElo.js";
export { normalDraw, type Random, seededRandom } from "./random.js";
export {
  assessRater,
  orientVote,
  outlierEValues,
  type RaterAssessment,
  type RaterFlag,
  type RaterVote,
} from "./raterQuality.js";
export {
  chiSquarePValue,
  type SrmResult,
  sampleRatioMismatch,
  srmLogBayesFactor,
} from "./sampleRatioMismatch.js";
