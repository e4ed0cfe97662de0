/** The voting page: one pair at a time, the next one already loaded, a running count. */
import { ApiRequestError, api, type Pair, type PairOrPending, type VoteChoice } from "./api.js";
import { KEYS, pairView, preload, typing } from "./pairView.js";
import { h, notice, type Page, setCount, wait } from "./ui.js";

export function votePage(params: { promptSet?: string }): Page {
  const status = h("p", { class: "status", role: "status" });
  const view = pairView((choice) => void vote(choice));
  const alertBox = h("div", { class: "notice", role: "alert", hidden: "" });
  const root = h("div", { class: "page vote-page" }, alertBox, view.root, status);
  let current: Pair | null = null;
  let upcoming: Promise<PairOrPending | null> | null = null;
  let busy = false;
  let alive = true;

  /** Fetches the next pair in the background and decodes its images. */
  const prefetch = () => {
    upcoming = api
      .nextPair({ promptSet: params.promptSet })
      .then(async (r) => {
        if (r.kind === "pair") await Promise.all([preload(r.pair.left.url), preload(r.pair.right.url)]);
        return r;
      })
      .catch(() => null); // shown when it is needed: advance() asks again
  };

  const advance = async (): Promise<void> => {
    view.setBusy(true);
    for (let attempt = 0; alive; attempt++) {
      let r: PairOrPending | null = upcoming ? await upcoming : null;
      upcoming = null;
      try {
        if (!r) r = await api.nextPair(params);
      } catch (err) {
        if (!(err instanceof ApiRequestError)) throw err;
        const s = err.retryAfterSeconds ?? 5;
        if (err.status === 429)
          await notice(alertBox, `You are going a little fast — the next pair comes in {s}.`, s);
        else {
          root.classList.add("empty");
          status.textContent = `${err.message} Trying again in ${s} s.`;
          await wait(s * 1000);
        }
        continue;
      }
      if (r.kind === "pending") {
        root.classList.add("empty");
        status.textContent =
          attempt === 0 ? "Fresh pairs are being generated…" : `${r.message} Still working…`;
        await wait(r.retryAfterSeconds * 1000);
        continue;
      }
      root.classList.remove("empty");
      current = r.pair;
      view.show(r.pair);
      status.textContent = "";
      view.setBusy(false);
      prefetch();
      return;
    }
  };

  const vote = async (choice: VoteChoice): Promise<void> => {
    if (busy || !current) return;
    busy = true;
    view.mark(choice);
    view.setBusy(true);
    const pair = current;
    const decisionMs = view.elapsedMs();
    try {
      for (;;) {
        try {
          const v = await api.vote(pair.voteToken, choice, decisionMs);
          setCount(v.voterVotes);
          break;
        } catch (err) {
          if (!(err instanceof ApiRequestError)) throw err;
          if (err.status === 429) {
            // keep the choice: it is sent again when the wait is over
            await notice(
              alertBox,
              "You are voting quickly! Your vote will be saved in {s}.",
              err.retryAfterSeconds ?? 5,
            );
            continue;
          }
          if (err.code === "vote_conflict" || err.status === 410 || err.status === 404) {
            status.textContent = err.message;
            break;
          }
          if (err.status === 0) {
            await notice(alertBox, "Connection lost — retrying in {s}.", 3);
            continue;
          }
          status.textContent = err.message;
          view.setBusy(false);
          view.mark(null);
          return;
        }
      }
      await advance();
    } finally {
      busy = false;
    }
  };

  const onKey = (e: KeyboardEvent) => {
    const choice = KEYS[e.key];
    if (!choice || typing(e) || e.altKey || e.ctrlKey || e.metaKey) return;
    e.preventDefault();
    void vote(choice);
  };

  return {
    title: "Vote",
    root,
    async mount() {
      document.addEventListener("keydown", onKey);
      status.textContent = "Loading a pair…";
      await advance();
    },
    unmount() {
      alive = false;
      document.removeEventListener("keydown", onKey);
    },
  };
}
