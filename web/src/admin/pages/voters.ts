/** Voters and rater quality: flags with their reasons, gold accuracy, and include / exclude. */
import { admin } from "../client.js";
import { sortableTable } from "../table.js";
import {
  type AdminPage,
  actionButton,
  badge,
  fill,
  fmt,
  h,
  listIn,
  num,
  pageRoot,
  panel,
  pick,
  str,
} from "../view.js";

type Row = Record<string, unknown>;

const voterId = (v: Row) => str(v, "id", "voterId") ?? "?";
interface Flag {
  code: string;
  reason: string | null;
}
const flags = (v: Row): Flag[] => {
  const f = pick<unknown>(v, "qualityFlags", "flags", "quality.flags");
  if (Array.isArray(f))
    return f.map((x) =>
      typeof x === "string"
        ? { code: x, reason: null }
        : { code: str(x, "code", "flag", "name") ?? "flag", reason: str(x, "reason") },
    );
  return [];
};
const excluded = (v: Row) => pick(v, "excluded", "isExcluded") === true || str(v, "status") === "excluded";
const goldAcc = (v: Row) => {
  const direct = num(v, "goldAccuracy", "gold.accuracy", "quality.goldAccuracy");
  if (direct != null) return direct;
  const right = num(v, "goldCorrect", "gold.correct");
  const seen = num(v, "goldSeen", "goldVotes", "gold.seen", "gold.total");
  return right != null && seen ? right / seen : null;
};

export function votersPage(): AdminPage {
  const table = h("div");
  const onlyFlagged = h("input", { type: "checkbox", id: "only-flagged" });
  const draw = () =>
    fill(
      table,
      async () => {
        const filter = onlyFlagged.checked ? "flagged" : "all";
        const rows = listIn<Row>(
          await admin.get<unknown>(`/api/admin/voters?filter=${filter}&limit=200`),
          "voters",
          "items",
        );
        return sortableTable<Row>({
          caption: "Voters",
          rows,
          sortBy: 2,
          descending: true,
          empty: onlyFlagged.checked ? "No flagged voters." : "No voters yet.",
          columns: [
            { label: "Voter", value: voterId, render: (v) => h("code", {}, fmt.short(voterId(v), 14)) },
            {
              label: "State",
              value: (v) => (excluded(v) ? "excluded" : "included"),
              render: (v) => badge(excluded(v) ? "excluded" : "included"),
            },
            {
              label: "Votes",
              value: (v) => num(v, "votes", "voteCount"),
              render: (v) => fmt.int(num(v, "votes", "voteCount")),
              numeric: true,
            },
            { label: "Gold accuracy", value: goldAcc, render: (v) => fmt.pct(goldAcc(v), 0), numeric: true },
            {
              label: "Flags and reasons",
              value: (v) =>
                flags(v)
                  .map((f) => f.code)
                  .join(", "),
              render: (v) => {
                const f = flags(v);
                const override = str(v, "qualityOverride");
                if (f.length === 0 && !override) return "—";
                return h(
                  "ul",
                  { class: "flags" },
                  ...f.map((x) => h("li", {}, badge(x.code), x.reason ? h("small", {}, ` ${x.reason}`) : "")),
                  ...(override ? [h("li", {}, h("small", {}, `set by hand: ${override}`))] : []),
                );
              },
            },
            {
              label: "Last seen",
              value: (v) => str(v, "lastSeenAt"),
              render: (v) => fmt.ago(str(v, "lastSeenAt")),
              wide: true,
            },
            {
              label: "Actions",
              fixed: true,
              value: () => null,
              render: (v) =>
                excluded(v)
                  ? actionButton(
                      "Include",
                      async () => {
                        await admin.post(`/api/admin/voters/${encodeURIComponent(voterId(v))}/include`);
                        return `${voterId(v)} counts again.`;
                      },
                      { onDone: () => void draw() },
                    )
                  : actionButton(
                      "Exclude",
                      async () => {
                        await admin.post(`/api/admin/voters/${encodeURIComponent(voterId(v))}/exclude`);
                        return `${voterId(v)} is excluded from snapshots, rankings and experiments.`;
                      },
                      {
                        kind: "danger",
                        confirm: `Exclude ${voterId(v)}'s votes?`,
                        onDone: () => void draw(),
                      },
                    ),
            },
          ],
        });
      },
      "voters",
    );
  onlyFlagged.addEventListener("change", () => void draw());
  const root = pageRoot(
    "Voters & quality",
    "Raters are checked for one-sided streaks, too-fast decisions, outlying agreement and gold-pair accuracy. Excluded voters' votes count nowhere.",
    h("div", { class: "toolbar" }, h("label", { class: "check" }, onlyFlagged, " Only flagged voters")),
    panel("Voters", table),
  );
  return { title: "Voters & quality", root, mount: async () => void (await draw()), unmount() {} };
}
