/**
 * What a voter may write as a prompt: normalized text, a length limit and a configurable blocklist
 * of words and phrases (matched as whole words, case-insensitively).
 */

export interface PromptPolicy {
  maxChars: number;
  /** Lower-case words or phrases. */
  blocklist: readonly string[];
}

export type PromptCheck =
  | { ok: true; text: string }
  | {
      ok: false;
      code: "prompt_empty" | "prompt_too_long" | "prompt_blocked" | "prompt_invalid";
      message: string;
    };

/** Lone UTF-16 surrogates: a JS string may hold them, UTF-8 (and so PostgreSQL) cannot. */
const LONE_SURROGATE = /\p{Surrogate}/u;

/** Unicode NFC, control characters removed, runs of whitespace collapsed, trimmed. */
export function normalizePrompt(raw: string): string {
  return raw
    .normalize("NFC")
    .replace(/[\p{Cc}\p{Cf}]+/gu, " ")
    .replace(/\s+/gu, " ")
    .trim();
}

/** `"a, b c ,d"` → `["a", "b c", "d"]`: the format of the PROMPT_BLOCKLIST variable. */
export function parseBlocklist(list: string | undefined): string[] {
  if (!list) return [];
  return [
    ...new Set(
      list
        .split(",")
        .map((t) => normalizePrompt(t).toLowerCase())
        .filter((t) => t.length > 0),
    ),
  ];
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** The first blocklisted term the text contains as a whole word or phrase, or null. */
export function blockedTerm(text: string, blocklist: readonly string[]): string | null {
  const lower = text.toLowerCase();
  for (const term of blocklist) {
    const re = new RegExp(`(?<![\\p{L}\\p{N}])${escapeRegExp(term)}(?![\\p{L}\\p{N}])`, "u");
    if (re.test(lower)) return term;
  }
  return null;
}

export function checkPrompt(raw: string, policy: PromptPolicy): PromptCheck {
  if (LONE_SURROGATE.test(raw)) {
    return {
      ok: false,
      code: "prompt_invalid",
      message: "This prompt holds a broken character (an unpaired UTF-16 surrogate); retype it.",
    };
  }
  const text = normalizePrompt(raw);
  if (text.length === 0) return { ok: false, code: "prompt_empty", message: "Write a prompt first." };
  const length = [...text].length;
  if (length > policy.maxChars) {
    return {
      ok: false,
      code: "prompt_too_long",
      message: `Prompts can be at most ${policy.maxChars} characters; this one has ${length}.`,
    };
  }
  if (blockedTerm(text, policy.blocklist) !== null) {
    return { ok: false, code: "prompt_blocked", message: "This prompt contains a word we do not generate." };
  }
  return { ok: true, text };
}
