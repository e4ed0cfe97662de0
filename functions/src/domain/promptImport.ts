/**
 * Parsing prompt sets for import: JSON Lines, CSV (RFC 4180 quoting, header row) and
 * PartiPrompts-style TSV (`Prompt\tCategory\tChallenge\tNote`). Pure: text in, rows and
 * per-line problems out. Duplicate prompts within a file are kept once.
 */

export type PromptFileFormat = "jsonl" | "csv" | "tsv";

export interface ImportedPrompt {
  text: string;
  category: string | null;
  challenge: string | null;
}

export interface ImportProblem {
  /** 1-based line (JSONL/TSV) or record (CSV) number. */
  line: number;
  message: string;
}

export interface ParsedPromptFile {
  prompts: ImportedPrompt[];
  problems: ImportProblem[];
}

/** Longest prompt an import accepts (the generation job's limit). */
export const MAX_IMPORTED_PROMPT_CHARS = 2000;

const TEXT_COLUMNS = ["prompt", "text", "caption"];

/** Why a field cannot be stored as text (PostgreSQL refuses NUL; UTF-8 has no lone surrogates), or null. */
function unstorable(s: string): string | null {
  if (s.includes("\0")) return "a NUL character";
  if (/\p{Surrogate}/u.test(s)) return "an unpaired UTF-16 surrogate";
  return null;
}

const clean = (s: string | undefined | null): string => (s ?? "").replace(/\s+/gu, " ").trim();
const optional = (s: string | undefined | null): string | null => clean(s) || null;

/** CSV records (arrays of fields) per RFC 4180: quoted fields may hold commas, quotes ("") and newlines. */
export function parseCsvRecords(text: string, delimiter = ","): string[][] {
  const records: string[][] = [];
  let field = "";
  let record: string[] = [];
  let quoted = false;
  let i = 0;
  const src = text.replace(/^\uFEFF/, "");
  while (i < src.length) {
    const ch = src[i] as string;
    if (quoted) {
      if (ch === '"') {
        if (src[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
      } else field += ch;
      i++;
      continue;
    }
    if (ch === '"' && field.length === 0) quoted = true;
    else if (ch === delimiter) {
      record.push(field);
      field = "";
    } else if (ch === "\n" || ch === "\r") {
      record.push(field);
      records.push(record);
      record = [];
      field = "";
      if (ch === "\r" && src[i + 1] === "\n") i++;
    } else field += ch;
    i++;
  }
  if (field.length > 0 || record.length > 0) {
    record.push(field);
    records.push(record);
  }
  return records.filter((r) => !(r.length === 1 && r[0] === ""));
}

function fromTable(header: string[], rows: string[][], firstLine: number): ParsedPromptFile {
  const names = header.map((h) => clean(h).toLowerCase());
  const textAt = names.findIndex((n) => TEXT_COLUMNS.includes(n));
  const problems: ImportProblem[] = [];
  if (textAt < 0) {
    return {
      prompts: [],
      problems: [
        { line: 1, message: `no prompt column: the header needs one of ${TEXT_COLUMNS.join(", ")}` },
      ],
    };
  }
  const categoryAt = names.indexOf("category");
  const challengeAt = names.indexOf("challenge");
  const rowsOut = rows.map((r, i) => ({
    line: firstLine + i,
    text: clean(r[textAt]),
    category: categoryAt >= 0 ? optional(r[categoryAt]) : null,
    challenge: challengeAt >= 0 ? optional(r[challengeAt]) : null,
  }));
  return collect(rowsOut, problems);
}

function collect(
  rows: { line: number; text: string; category: string | null; challenge: string | null }[],
  problems: ImportProblem[],
): ParsedPromptFile {
  const seen = new Set<string>();
  const prompts: ImportedPrompt[] = [];
  for (const r of rows) {
    const broken = [r.text, r.category, r.challenge].find((f) => f !== null && unstorable(f));
    if (broken !== undefined) {
      problems.push({ line: r.line, message: `${unstorable(broken as string)}: the line is skipped` });
      continue;
    }
    if (!r.text) {
      problems.push({ line: r.line, message: "empty prompt" });
      continue;
    }
    if ([...r.text].length > MAX_IMPORTED_PROMPT_CHARS) {
      problems.push({ line: r.line, message: `prompt longer than ${MAX_IMPORTED_PROMPT_CHARS} characters` });
      continue;
    }
    if (seen.has(r.text)) continue;
    seen.add(r.text);
    prompts.push({ text: r.text, category: r.category, challenge: r.challenge });
  }
  return { prompts, problems };
}

function parseJsonl(text: string): ParsedPromptFile {
  const problems: ImportProblem[] = [];
  const rows: { line: number; text: string; category: string | null; challenge: string | null }[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1;
    if (!raw.trim()) return;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      problems.push({ line, message: "not valid JSON" });
      return;
    }
    if (typeof value === "string") {
      rows.push({ line, text: clean(value), category: null, challenge: null });
      return;
    }
    if (!value || typeof value !== "object" || Array.isArray(value)) {
      problems.push({ line, message: "expected an object with a prompt field" });
      return;
    }
    const obj = value as Record<string, unknown>;
    const key = TEXT_COLUMNS.find((k) => typeof obj[k] === "string");
    if (!key) {
      problems.push({ line, message: "no prompt, text or caption string field" });
      return;
    }
    const str = (v: unknown) => (typeof v === "string" ? optional(v) : null);
    rows.push({
      line,
      text: clean(obj[key] as string),
      category: str(obj.category),
      challenge: str(obj.challenge),
    });
  });
  return collect(rows, problems);
}

export function parsePromptFile(format: PromptFileFormat, text: string): ParsedPromptFile {
  if (format === "jsonl") return parseJsonl(text);
  if (format === "csv") {
    const [header, ...rows] = parseCsvRecords(text);
    if (!header) return { prompts: [], problems: [{ line: 1, message: "empty file" }] };
    return fromTable(header, rows, 2);
  }
  // TSV (PartiPrompts): no quoting — prompts contain quotes verbatim; tabs separate fields.
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  const header = lines[0]?.split("\t");
  if (!header?.join("").trim()) return { prompts: [], problems: [{ line: 1, message: "empty file" }] };
  const body = lines.slice(1).map((l) => l.split("\t"));
  // keep line numbers: blank lines are skipped, not reported
  const kept = body.map((r, i) => ({ r, line: i + 2 })).filter(({ r }) => r.join("").trim() !== "");
  const parsed = fromTable(
    header,
    kept.map((k) => k.r),
    2,
  );
  // fromTable numbered rows consecutively; map them back to file lines
  parsed.problems = parsed.problems.map((p) => ({ ...p, line: kept[p.line - 2]?.line ?? p.line }));
  return parsed;
}

/** The format a file name or content type suggests, or null. */
export function guessFormat(nameOrType: string): PromptFileFormat | null {
  const s = nameOrType.toLowerCase();
  if (s.endsWith(".jsonl") || s.endsWith(".ndjson") || s.includes("ndjson") || s.includes("jsonl"))
    return "jsonl";
  if (s.endsWith(".tsv") || s.includes("tab-separated")) return "tsv";
  if (s.endsWith(".csv") || s.includes("text/csv")) return "csv";
  return null;
}
