/**
 * A voter that keeps voting: asks for a pair, votes on it, and retries the same vote (same token)
 * until it is acknowledged, as the web app does after a network error or a 503. Records every
 * acknowledged vote and every refusal, for the fault tests to compare with what was stored.
 */
import type { Browser } from "../api/votingHarness.js";

export interface Acknowledged {
  pairId: string;
  voterId: string;
  choice: string;
  at: number;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A response's status and error code, or null when the request itself failed (no response). */
async function outcome(res: Promise<Response>): Promise<{ res: Response; body: unknown } | null> {
  try {
    const r = await res;
    return { res: r, body: await r.json().catch(() => null) };
  } catch {
    return null;
  }
}

export async function voteLoop(
  b: Browser,
  nextPath: string,
  out: { acknowledged: Acknowledged[]; failures: { status: number; code: string }[]; stop: { now: boolean } },
): Promise<void> {
  const note = (status: number, body: unknown) =>
    out.failures.push({ status, code: (body as { error?: { code?: string } })?.error?.code ?? "?" });
  while (!out.stop.now && !b.csrf) {
    const r = await outcome(b.session().then(() => new Response("{}")));
    if (!r) await pause(100);
  }
  let n = 0;
  while (!out.stop.now) {
    const got = await outcome(b.request(nextPath));
    if (got?.res.status !== 200) {
      // 202: no pair ready this moment (the pool refills): an answer, not a failure.
      if (got && got.res.status !== 202) note(got.res.status, got.body);
      await pause(100);
      continue;
    }
    const pair = got.body as { pairId: string; voteToken: string };
    const choice = ["left", "right", "tie", "both_bad"][n++ % 4] as string;
    for (;;) {
      const voted = await outcome(b.post("/api/votes", { token: pair.voteToken, choice, decisionMs: 1200 }));
      if (voted && (voted.res.status === 201 || voted.res.status === 200)) {
        const v = voted.body as { pairId: string };
        const voterId = (b.cookie("prefloop_voter") ?? "").split(".")[0] as string;
        out.acknowledged.push({ pairId: v.pairId, voterId, choice, at: Date.now() });
        break;
      }
      if (voted) note(voted.res.status, voted.body);
      await pause(100);
    }
  }
}
