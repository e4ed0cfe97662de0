/**
 * A stored vote → one row of a training snapshot in Pick-a-Pic v2's columns. Pure: no I/O.
 *
 * Image 0 is the pair's generation A and image 1 its generation B, whichever side each was shown
 * on; `vote` says the voter's answer in those terms and `left_shown` which image was on the left.
 * Labels follow Pick-a-Pic v2: the preferred image 1, the other 0; a tie 0.5 / 0.5. A both-bad
 * vote is 0.5 / 0.5 with `has_label = false`, so a reader that keeps `label_0 in (0, 1)` (the
 * diffusers DPO example) never trains on it as a preference, while a KTO reader can use
 * `vote = both_bad` as two undesirable images.
 */
import { createHash } from "node:crypto";

export type SnapshotVote = "image_0" | "image_1" | "tie" | "both_bad";
export type SnapshotSplit = "train" | "validation" | "test";
export const SNAPSHOT_SPLITS: readonly SnapshotSplit[] = ["train", "validation", "test"];

/** Shares of prompts in the train and validation splits (the rest is test). */
export const SPLIT_SHARES = { train: 0.8, validation: 0.1 } as const;

/** The answer in image_0 / image_1 terms: `left`/`right` resolved through the side shown left. */
export function voteInImageTerms(choice: string, leftIs: "a" | "b"): SnapshotVote {
  if (choice === "tie" || choice === "both_bad") return choice;
  if (choice !== "left" && choice !== "right") throw new Error(`unknown vote choice ${choice}`);
  const leftImage = leftIs === "a" ? "image_0" : "image_1";
  const rightImage = leftIs === "a" ? "image_1" : "image_0";
  return choice === "left" ? leftImage : rightImage;
}

export interface Labels {
  label_0: number;
  label_1: number;
  has_label: boolean;
}

export function labelsOf(vote: SnapshotVote): Labels {
  switch (vote) {
    case "image_0":
      return { label_0: 1, label_1: 0, has_label: true };
    case "image_1":
      return { label_0: 0, label_1: 1, has_label: true };
    case "tie":
      return { label_0: 0.5, label_1: 0.5, has_label: true };
    case "both_bad":
      return { label_0: 0.5, label_1: 0.5, has_label: false };
  }
}

/** A number in [0, 1) from the first 8 bytes of sha256(text). */
function unitHash(text: string): number {
  const d = createHash("sha256").update(text, "utf8").digest();
  return Number(d.readBigUInt64BE(0) >> 11n) / 2 ** 53;
}

/** The split of a prompt: a stable hash of its text, so one prompt never sits in two splits. */
export function splitOfPrompt(text: string): SnapshotSplit {
  const u = unitHash(text);
  if (u < SPLIT_SHARES.train) return "train";
  if (u < SPLIT_SHARES.train + SPLIT_SHARES.validation) return "validation";
  return "test";
}

/** A stable non-negative int64 for an id (Pick-a-Pic's `user_id` / `ranking_id` are int64). */
export function stableInt64(id: string): bigint {
  const d = createHash("sha256").update(id, "utf8").digest();
  return d.readBigUInt64BE(0) & 0x7fff_ffff_ffff_ffffn;
}

/** `base` for the base model, `base+adapter` with an adapter (Pick-a-Pic's `model_0` / `model_1`). */
export function modelName(baseModelId: string, adapterId: string | null): string {
  return adapterId ? `${baseModelId}+${adapterId}` : baseModelId;
}

/** The uid of the preferred image; empty for ties and both-bad votes (as in Pick-a-Pic v2). */
export function bestImageUid(vote: SnapshotVote, uid0: string, uid1: string): string {
  return vote === "image_0" ? uid0 : vote === "image_1" ? uid1 : "";
}

/** Same-length byte arrays with the same bytes. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
