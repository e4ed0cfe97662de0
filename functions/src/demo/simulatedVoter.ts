/**
 * A simulated voter that uses the public HTTP API exactly as the web page does: it keeps its
 * cookies, reads the CSRF token from `GET /api/session`, asks `GET /api/pairs/next` (waiting
 * out 202 / 429 / 503 by their Retry-After), downloads both images through their signed URLs,
 * looks at them (decoded with sharp) and posts `POST /api/votes` with the CSRF header and the
 * time it took to decide. Its taste is a rule on the pixels (`preference.ts`) with some noise.
 *
 * The transport is any fetch-like function, so the same voter drives a server over the network
 * (`fetch`) or an app in the same process (`app.request`, see `appTransport`).
 */
import sharp from "sharp";
import type { Random } from "../domain/pairing.js";
import {
  type DemoChoice,
  demoChoice,
  grain,
  type LookedAt,
  type PreferenceRule,
  preferenceScore,
} from "./preference.js";

/** A fetch-like function: an absolute URL or a path, and the request's init. */
export type Transport = (url: string, init?: RequestInit) => Promise<Response>;

/** A transport over an in-process app (`app.request`): absolute URLs are reduced to path + query. */
export function appTransport(app: {
  request: (input: string, init?: RequestInit) => Response | Promise<Response>;
}): Transport {
  return async (url, init) => {
    const u = new URL(url, "http://app.local");
    return app.request(`${u.pathname}${u.search}`, init);
  };
}

/** A transport over the network to a server at `baseUrl` (paths are resolved against it). */
export function httpTransport(baseUrl: string): Transport {
  return (url, init) => fetch(new URL(url, baseUrl), init);
}

export interface SimulatedVoterOptions {
  rule: PreferenceRule;
  /** Share of votes chosen at random instead of by the rule. */
  noise: number;
  random: Random;
  /** The voter cookie to start with (a demo voter's); none = a first visit, like a new browser. */
  cookie?: string;
  /** How long the voter looks at a pair before voting, in ms (≥ 1000 for a realistic pace). */
  decisionMs?: () => number;
  /** Waits `ms` (tests pass a no-op to run at full speed). */
  sleep?: (ms: number) => Promise<void>;
  /** Extra request headers (tests: a client address). */
  headers?: Record<string, string>;
}

export interface CastVote {
  pairId: string;
  choice: DemoChoice;
  /** What the voter's judgement alone would choose (before noise): the clean side of a spoiled pair, else the rule. */
  ruleChoice: DemoChoice;
  scores: { left: number; right: number };
  grain: { left: number; right: number };
  decisionMs: number;
  status: number;
}

/** The result of one step: a vote, or a wait the server asked for. */
export type StepResult = { kind: "voted"; vote: CastVote } | { kind: "waited"; status: number; ms: number };

const sleepFor = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function retryAfterMs(res: Response, fallbackSeconds: number): number {
  const s = Number(res.headers.get("retry-after"));
  return (Number.isFinite(s) && s > 0 ? s : fallbackSeconds) * 1000;
}

export class SimulatedVoter {
  private readonly cookies = new Map<string, string>();
  private csrf: string | null = null;
  readonly votes: CastVote[] = [];

  constructor(
    private readonly transport: Transport,
    private readonly opts: SimulatedVoterOptions,
  ) {
    if (opts.cookie) {
      const eq = opts.cookie.indexOf("=");
      this.cookies.set(opts.cookie.slice(0, eq), opts.cookie.slice(eq + 1));
    }
  }

  private async request(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    for (const [k, v] of Object.entries(this.opts.headers ?? {})) headers.set(k, v);
    if (this.cookies.size > 0) {
      headers.set("cookie", [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; "));
    }
    const res = await this.transport(url, { ...init, headers });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(";");
      const eq = pair?.indexOf("=") ?? -1;
      if (pair && eq > 0) this.cookies.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    return res;
  }

  /** `GET /api/session`: the cookie (set on a first visit) and the CSRF token for POSTs. */
  async session(): Promise<void> {
    const res = await this.request("/api/session");
    if (res.status !== 200) throw new Error(`session: HTTP ${res.status}`);
    this.csrf = ((await res.json()) as { csrfToken: string }).csrfToken;
  }

  private async look(url: string): Promise<LookedAt> {
    const res = await this.request(url);
    if (res.status !== 200) throw new Error(`image: HTTP ${res.status}`);
    const { data, info } = await sharp(Buffer.from(await res.arrayBuffer()))
      .raw()
      .toBuffer({ resolveWithObject: true });
    const px = { width: info.width, height: info.height, channels: info.channels, data };
    return { score: preferenceScore(this.opts.rule, px), grain: grain(px) };
  }

  /**
   * One turn: fetch the next pair, look at it, vote. When the server answers 202, 429 or 503,
   * waits as long as its Retry-After says (through `sleep`) and reports the wait instead.
   */
  async step(): Promise<StepResult> {
    if (!this.csrf) await this.session();
    const sleep = this.opts.sleep ?? sleepFor;
    const res = await this.request("/api/pairs/next");
    if (res.status !== 200) {
      if (![202, 429, 503].includes(res.status)) throw new Error(`next pair: HTTP ${res.status}`);
      await res.body?.cancel();
      const ms = retryAfterMs(res, res.status === 503 ? 30 : 2);
      await sleep(ms);
      return { kind: "waited", status: res.status, ms };
    }
    const pair = (await res.json()) as {
      pairId: string;
      voteToken: string;
      left: { url: string };
      right: { url: string };
    };
    const [left, right] = await Promise.all([this.look(pair.left.url), this.look(pair.right.url)]);
    const ruleChoice = demoChoice(left, right, 0, this.opts.random);
    const choice = demoChoice(left, right, this.opts.noise, this.opts.random);
    const decisionMs = Math.round(this.opts.decisionMs?.() ?? 1000 + 2000 * this.opts.random());
    await sleep(decisionMs);
    for (let attempt = 1; ; attempt++) {
      const voted = await this.request("/api/votes", {
        method: "POST",
        headers: { "content-type": "application/json", "x-csrf-token": this.csrf ?? "" },
        body: JSON.stringify({ token: pair.voteToken, choice, decisionMs }),
      });
      await voted.body?.cancel();
      if (voted.status === 429 && attempt < 10) {
        await sleep(retryAfterMs(voted, 2));
        continue;
      }
      const vote = {
        pairId: pair.pairId,
        choice,
        ruleChoice,
        scores: { left: left.score, right: right.score },
        grain: { left: left.grain, right: right.grain },
        decisionMs,
        status: voted.status,
      };
      if (voted.status !== 201 && voted.status !== 200) throw new Error(`vote: HTTP ${voted.status}`);
      this.votes.push(vote);
      return { kind: "voted", vote };
    }
  }

  /** Steps until `signal` aborts; errors are reported to `onError` and waited out (5 s). */
  async run(signal: AbortSignal, onError: (err: unknown) => void = () => {}): Promise<void> {
    const sleep = this.opts.sleep ?? sleepFor;
    while (!signal.aborted) {
      try {
        await this.step();
      } catch (err) {
        if (signal.aborted) return;
        onError(err);
        await sleep(5_000);
      }
    }
  }
}
