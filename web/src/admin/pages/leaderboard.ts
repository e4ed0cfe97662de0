/**
 * The leaderboard: each model's score with its interval as whiskers, rank, votes and both-bad
 * rate, over all prompts or one category. The numbers are the API's; nothing is computed here.
 */

import { intervalChart } from "../charts.js";
import { admin } from "../client.js";
import { sortableTable } from "../table.js";
import {
  type AdminPage,
  fill,
  fmt,
  h,
  listIn,
  note,
  num,
  pageRoot,
  panel,
  pick,
  type Route,
  str,
} from "../view.js";

type Row = Record<string, unknown>;

const name = (r: Row) => str(r, "name", "label", "model", "adapterId", "id") ?? "?";
const lower = (r: Row) => num(r, "lower", "ciLower", "ci.lower", "interval.lower", "ci.0");
const upper = (r: Row) => num(r, "upper", "ciUpper", "ci.upper", "interval.upper", "ci.1");
const score = (r: Row) => num(r, "score", "rating", "estimate", "strength");

export function leaderboardPage(route: Route): AdminPage {
  const picker = h("select", { id: "lb-category" }, h("option", { value: "" }, "All categories"));
  const chart = h("div");
  const table = h("div");
  const meta = h("p", { class: "muted" });
  const root = pageRoot(
    "Leaderboard",
    "Bradley–Terry scores of the base model and every adapter from the votes, with their confidence intervals.",
    h("div", { class: "toolbar" }, h("label", { for: "lb-category" }, "Category"), picker),
    panel("Scores", chart, meta),
    panel("Ranking", table),
  );

  const load = async () => {
    const category = picker.value;
    const body = await admin.get<unknown>(
      `/api/leaderboard${category ? `?category=${encodeURIComponent(category)}` : ""}`,
    );
    const rows = listIn<Row>(body, "rows", "entries", "models", "leaderboard", "items");
    const categories = listIn<unknown>(body, "categories").map((c) =>
      typeof c === "string" ? c : (str(c, "category", "name") ?? ""),
    );
    if (picker.options.length === 1) {
      for (const c of categories.filter(Boolean)) picker.append(h("option", { value: c }, c));
    }
    const votes = num(body, "votes", "totalVotes", "usableVotes");
    meta.textContent = [
      votes != null ? `${fmt.int(votes)} usable votes` : "",
      str(body, "method") ?? "",
      str(body, "generatedAt", "updatedAt")
        ? `computed ${fmt.ago(str(body, "generatedAt", "updatedAt"))}`
        : "",
    ]
      .filter(Boolean)
      .join(" · ");
    const withCi = rows.filter((r) => score(r) != null && lower(r) != null && upper(r) != null);
    return { rows, withCi };
  };

  const draw = async () => {
    let data: Awaited<ReturnType<typeof load>> | null = null;
    await fill(
      chart,
      async () => {
        data = await load();
        if (data.withCi.length === 0)
          return note("empty", "No scores yet: they appear once votes compare models.");
        return intervalChart(
          data.withCi.map((r) => ({
            label: name(r),
            estimate: score(r) as number,
            lower: lower(r) as number,
            upper: upper(r) as number,
            highlight: pick(r, "status") === "champion" || pick(r, "champion") === true,
          })),
          { caption: "Rating with its 95 % interval (Elo scale)", x: "rating →" },
        );
      },
      "leaderboards",
    );
    if (!data) {
      table.replaceChildren();
      return;
    }
    const rows = (data as { rows: Row[] }).rows;
    table.replaceChildren(
      sortableTable<Row>({
        caption: "Ranking",
        rows,
        sortBy: 0,
        empty: "No models ranked yet.",
        columns: [
          { label: "Rank", value: (r) => num(r, "rank"), numeric: true },
          { label: "Model", value: name },
          { label: "Score", value: score, render: (r) => fmt.num(score(r), 1), numeric: true },
          {
            label: "Interval",
            value: lower,
            render: (r) => (lower(r) == null ? "—" : `${fmt.num(lower(r), 1)} – ${fmt.num(upper(r), 1)}`),
            numeric: true,
            wide: true,
          },
          {
            label: "Votes",
            value: (r) => num(r, "votes", "n", "comparisons"),
            render: (r) => fmt.int(num(r, "votes", "n", "comparisons")),
            numeric: true,
          },
          {
            label: "Both bad",
            value: (r) => num(r, "bothBadRate", "bothBad"),
            render: (r) => fmt.pct(num(r, "bothBadRate")),
            numeric: true,
          },
        ],
      }),
    );
  };

  picker.addEventListener("change", () => {
    const q = picker.value ? `?category=${encodeURIComponent(picker.value)}` : "";
    history.replaceState(null, "", `/admin/leaderboard${q}`);
    void draw();
  });

  return {
    title: "Leaderboard",
    root,
    async mount() {
      const c = route.query.get("category");
      if (c) picker.append(h("option", { value: c, selected: "" }, c));
      await draw();
    },
    unmount() {},
  };
}
