/**
 * Online Elo, for display beside the Bradley–Terry ratings (FastChat's `compute_elo`): each vote
 * in order moves both ratings by K·(outcome − expected), K = 4, scale 400, base 10, start 1000.
 * It depends on the order of the votes and is not a statistic to decide anything with.
 */
import type { Battle } from "./bradleyTerry.js";

export function onlineElo(
  battles: Iterable<Battle>,
  opts: { k?: number; scale?: number; base?: number; initial?: number } = {},
): Record<string, number> {
  const { k = 4, scale = 400, base = 10, initial = 1000 } = opts;
  const rating: Record<string, number> = {};
  for (const b of battles) {
    const ra = rating[b.left] ?? initial;
    const rb = rating[b.right] ?? initial;
    rating[b.left] = ra;
    rating[b.right] = rb;
    if (b.left === b.right) continue;
    const ea = 1 / (1 + base ** ((rb - ra) / scale));
    const eb = 1 / (1 + base ** ((ra - rb) / scale));
    rating[b.left] = ra + k * (b.outcome - ea);
    rating[b.right] = rb + k * (1 - b.outcome - eb);
  }
  return rating;
}
