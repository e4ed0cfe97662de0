/**
 * The landing page: whether pairs are flowing (pool and queue), the prompt sets, the newest
 * votes, and what the loop is doing, each with a link to its page.
 */
import { admin } from "../client.js";
import { sortableTable } from "../table.js";
import { type AdminPage, facts, fill, fmt, h, link, livePage, pageRoot, panel } from "../view.js";
import { loopStory } from "./loopStory.js";

interface Pool {
  depth: number;
  ready: number;
  generating: number;
  failed: number;
  queue: { ready: number; inFlight: number; dead: number };
}
interface PromptSet {
  id: string;
  name: string;
  source: string;
  prompts: number;
  createdAt: string;
}
interface VoteRow {
  voteId: string;
  voterId: string;
  choice: string;
  prompt: string;
  category: string | null;
  decisionMs: number | null;
  experimentId: string | null;
  createdAt: string;
}

export function overviewPage(): AdminPage {
  const pool = h("div");
  const sets = h("div");
  const votes = h("div");
  const loop = h("div");
  const root = pageRoot(
    "Overview",
    "Pairs being generated and voted on, the prompts they come from, and the newest votes.",
    h(
      "div",
      { class: "grid two" },
      panel("Pair pool", pool, h("p", { class: "more" }, link("/", "Open the voting page ↗"))),
      panel("Loop", loop, h("p", { class: "more" }, link("/admin/loop", "The loop in detail →"))),
    ),
    panel("Newest votes", votes),
    panel("Prompt sets", sets),
  );

  const loadPool = () =>
    fill(
      pool,
      async () => {
        const p = await admin.get<Pool>("/api/admin/pool");
        return facts([
          ["Ready to vote on", fmt.int(p.ready)],
          ["Being generated", fmt.int(p.generating)],
          ["Failed", fmt.int(p.failed)],
          ["Pool depth", fmt.int(p.depth)],
          ["Generation jobs waiting", fmt.int(p.queue.ready)],
          ["Dead letters", fmt.int(p.queue.dead)],
        ]);
      },
      "pool status",
    );
  const loadVotes = () =>
    fill(
      votes,
      async () => {
        const r = await admin.get<{ votes: VoteRow[] }>("/api/admin/votes?limit=8");
        return sortableTable<VoteRow>({
          caption: "Newest votes",
          rows: r.votes,
          empty: "No votes yet: open the voting page and pick a few images.",
          columns: [
            { label: "When", value: (v) => v.createdAt, render: (v) => fmt.ago(v.createdAt) },
            { label: "Prompt", value: (v) => v.prompt },
            { label: "Choice", value: (v) => v.choice.replace("_", " ") },
            {
              label: "Decision time",
              value: (v) => v.decisionMs,
              render: (v) => (v.decisionMs == null ? "—" : `${(v.decisionMs / 1000).toFixed(1)} s`),
              numeric: true,
              wide: true,
            },
            { label: "Voter", value: (v) => v.voterId, render: (v) => fmt.short(v.voterId, 10), wide: true },
          ],
        });
      },
      "votes",
    );
  const loadSets = () =>
    fill(
      sets,
      async () => {
        const r = await admin.get<{ promptSets: PromptSet[] }>("/api/admin/prompt-sets");
        return sortableTable<PromptSet>({
          caption: "Prompt sets",
          rows: r.promptSets,
          empty: "No prompt sets yet.",
          sortBy: 2,
          descending: true,
          columns: [
            { label: "Name", value: (s) => s.name },
            { label: "Source", value: (s) => s.source, wide: true },
            { label: "Prompts", value: (s) => s.prompts, render: (s) => fmt.int(s.prompts), numeric: true },
            { label: "Imported", value: (s) => s.createdAt, render: (s) => fmt.date(s.createdAt) },
          ],
        });
      },
      "prompt sets",
    );
  const loadLoop = () =>
    fill(
      loop,
      async () => {
        const story = loopStory(await admin.get<unknown>("/api/admin/loop"));
        return h(
          "div",
          { class: "story" },
          h("p", {}, h("strong", {}, "Now: "), story.now),
          h("p", {}, h("strong", {}, "Next: "), story.next),
        );
      },
      "the loop's status",
    );
  return livePage(
    "Overview",
    root,
    5000,
    () => Promise.all([loadPool(), loadVotes(), loadSets(), loadLoop()]),
    () => Promise.all([loadPool(), loadVotes()]),
  );
}
