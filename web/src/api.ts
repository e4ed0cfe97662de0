/**
 * The typed client of the voting API. Request and response types come from the server's own zod
 * schemas (functions/src/api/votingSchemas.ts, the source of /openapi.json), so a change on
 * one side fails the type check of the other.
 */
import type {
  ApiErrorBody,
  Pair,
  Pending,
  PromptAccepted,
  Session,
  Vote,
  VoteChoice,
} from "../../functions/src/api/votingSchemas.js";

export type { Pair, PromptAccepted, Session, Vote, VoteChoice };

/** A refused request: the API's `{error: {code, message}}` plus status and Retry-After. */
export class ApiRequestError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfterSeconds: number | null,
  ) {
    super(message);
  }
}

export type PairOrPending =
  | { kind: "pair"; pair: Pair }
  | { kind: "pending"; retryAfterSeconds: number; message: string };

let csrf: string | null = null;

async function call<T>(path: string, init: RequestInit = {}): Promise<{ status: number; body: T }> {
  const headers = new Headers(init.headers);
  if (init.method === "POST") {
    headers.set("content-type", "application/json");
    if (csrf) headers.set("x-csrf-token", csrf);
  }
  let res: Response;
  try {
    res = await fetch(path, { ...init, headers, credentials: "same-origin" });
  } catch {
    throw new ApiRequestError(0, "offline", "Cannot reach the server; check your connection.", 3);
  }
  const retry = res.headers.get("retry-after");
  const retryAfterSeconds = retry && /^\d+$/.test(retry) ? Number(retry) : null;
  const body = (await res.json().catch(() => null)) as unknown;
  if (!res.ok) {
    const err = (body as ApiErrorBody | null)?.error;
    throw new ApiRequestError(
      res.status,
      err?.code ?? "http_error",
      err?.message ?? `The server answered ${res.status}.`,
      retryAfterSeconds,
    );
  }
  return { status: res.status, body: body as T };
}

export const api = {
  async session(): Promise<Session> {
    const { body } = await call<Session>("/api/session");
    csrf = body.csrfToken;
    return body;
  },

  async nextPair(params: { promptSet?: string } = {}): Promise<PairOrPending> {
    const q = new URLSearchParams(Object.entries(params).filter((e): e is [string, string] => Boolean(e[1])));
    const { status, body } = await call<Pair | Pending>(`/api/pairs/next${q.size ? `?${q}` : ""}`);
    if (status === 202) {
      const p = body as Pending;
      return { kind: "pending", retryAfterSeconds: p.retryAfterSeconds, message: p.message };
    }
    return { kind: "pair", pair: body as Pair };
  },

  async pair(pairId: string): Promise<PairOrPending> {
    const { status, body } = await call<Pair | Pending>(`/api/pairs/${encodeURIComponent(pairId)}`);
    if (status === 202) {
      const p = body as Pending;
      return { kind: "pending", retryAfterSeconds: p.retryAfterSeconds, message: p.message };
    }
    return { kind: "pair", pair: body as Pair };
  },

  async vote(token: string, choice: VoteChoice, decisionMs: number): Promise<Vote> {
    const { body } = await call<Vote>("/api/votes", {
      method: "POST",
      body: JSON.stringify({ token, choice, decisionMs: Math.max(0, Math.round(decisionMs)) }),
    });
    return body;
  },

  async writePrompt(text: string): Promise<PromptAccepted> {
    const { body } = await call<PromptAccepted>("/api/prompts", {
      method: "POST",
      body: JSON.stringify({ text }),
    });
    return body;
  },
};
