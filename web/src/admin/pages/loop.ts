/**
 * The loop: what it is doing now and will do next (in the API's words), its settings, and its
 * rounds: snapshot → training → experiment → promotion.
 */
import { admin } from "../client.js";
import { sortableTable } from "../table.js";
import {
  type AdminPage,
  badge,
  facts,
  fill,
  fmt,
  h,
  link,
  listIn,
  livePage,
  num,
  pageRoot,
  panel,
  pick,
  str,
} from "../view.js";
import { loopStory } from "./loopStory.js";

type Row = Record<string, unknown>;

const label = (k: string) =>
  k
    .replace(/([a-z])([A-Z])/g, "$1 $2")
    .replace(/_/g, " ")
    .replace(/^./, (c) => c.toUpperCase());

/** A value as a person reads it: dates, numbers, states, nested summaries. */
function show(key: string, v: unknown): Node | string {
  if (v == null) return "—";
  if (typeof v === "number") return fmt.num(v, 3);
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (typeof v === "string") {
    if (/At$|^at$/.test(key) && !Number.isNaN(Date.parse(v))) return fmt.date(v);
    if (/status|state|phase|stage/i.test(key)) return badge(v);
    return v;
  }
  if (Array.isArray(v)) {
    if (v.length === 0) return "—";
    // {objective, space} pairs read as dpo/latent
    return v
      .map((x) =>
        x && typeof x === "object"
          ? Object.values(x as Row)
              .map(String)
              .join("/")
          : String(x),
      )
      .join(", ");
  }
  const o = v as Row;
  const summary = str(o, "summary", "description", "message", "reason");
  if (summary) return summary;
  const parts = Object.entries(o)
    .filter(([, x]) => x == null || typeof x !== "object")
    .map(([k, x]) => `${label(k)}: ${typeof x === "number" ? fmt.num(x, 3) : (x ?? "—")}`);
  return parts.length ? parts.join(" · ") : "—";
}

function roundsTable(rounds: Row[]): HTMLElement {
  return sortableTable<Row>({
    caption: "Rounds",
    rows: rounds,
    sortBy: 0,
    descending: true,
    empty: "No rounds yet.",
    columns: [
      { label: "Round", value: (r) => str(r, "id") },
      {
        label: "Started",
        value: (r) => str(r, "createdAt", "startedAt"),
        render: (r) => fmt.date(str(r, "createdAt", "startedAt")),
      },
      {
        label: "State",
        value: (r) => str(r, "status", "state", "phase"),
        render: (r) => badge(str(r, "status", "state", "phase")),
      },
      {
        label: "Snapshot",
        value: (r) => str(r, "datasetSnapshotId", "snapshotId"),
        render: (r) => fmt.short(str(r, "datasetSnapshotId", "snapshotId")),
        wide: true,
      },
      {
        label: "Experiment",
        value: (r) => str(r, "experimentId"),
        render: (r) =>
          str(r, "experimentId")
            ? link(
                `/admin/experiments/${encodeURIComponent(str(r, "experimentId") as string)}`,
                fmt.short(str(r, "experimentId")),
              )
            : "—",
      },
      {
        label: "Runs",
        value: (r) => listIn(pick(r, "trainingRunIds")).length,
        numeric: true,
        wide: true,
      },
      { label: "Note", value: (r) => str(r, "note", "outcome", "reason"), wide: true },
    ],
  });
}

/** One base model's loop: its champion, the votes toward the next round, the active round's runs and experiment. */
function modelDetails(m: Row): Node[] {
  const out: Node[] = [
    facts([
      ["Base model", str(m, "baseModelId") ?? "—"],
      ["Champion", str(m, "champion.adapterId") ?? "the base model"],
      ["Usable votes since its snapshot", fmt.int(num(m, "usableVotesSinceChampionSnapshot"))],
      ["Next step", badge(str(m, "next.action"))],
    ]),
  ];
  const runs = listIn<Row>(pick(m, "activeRound.runs"));
  if (runs.length > 0) {
    out.push(
      h("h3", {}, "The active round's training runs"),
      sortableTable<Row>({
        caption: "The active round's training runs",
        rows: runs,
        columns: [
          {
            label: "Run",
            value: (r) => str(r, "id"),
            render: (r) =>
              link(
                `/admin/training-runs/${encodeURIComponent(str(r, "id") ?? "")}`,
                fmt.short(str(r, "id"), 18),
              ),
          },
          { label: "Objective", value: (r) => `${str(r, "objective")} / ${str(r, "space")}` },
          { label: "Status", value: (r) => str(r, "status"), render: (r) => badge(str(r, "status")) },
          {
            label: "Progress",
            value: (r) => num(r, "progress.step"),
            render: (r) =>
              num(r, "progress.totalSteps")
                ? `${fmt.int(num(r, "progress.step"))} / ${fmt.int(num(r, "progress.totalSteps"))}`
                : "—",
            numeric: true,
          },
        ],
      }),
    );
  }
  const arms = listIn<Row>(pick(m, "activeExperiment.arms"));
  if (arms.length > 0) {
    out.push(
      h("h3", {}, "The running experiment's challengers now"),
      sortableTable<Row>({
        caption: "The running experiment's challengers now",
        rows: arms,
        columns: [
          { label: "Arm", value: (a) => str(a, "arm") },
          { label: "Votes", value: (a) => num(a, "n"), render: (a) => fmt.int(num(a, "n")), numeric: true },
          {
            label: "Win rate [interval]",
            value: (a) => num(a, "estimate"),
            render: (a) =>
              `${fmt.num(num(a, "estimate"), 3)} [${fmt.num(num(a, "lower"), 3)}, ${fmt.num(num(a, "upper"), 3)}]`,
            numeric: true,
          },
          {
            label: "State",
            value: (a) => str(a, "state"),
            render: (a) => badge(str(a, "state") ?? "undecided"),
          },
        ],
      }),
    );
  }
  return out;
}

export function loopPage(): AdminPage {
  const now = h("div");
  const rounds = h("div");
  const settings = h("div");
  const draw = () =>
    fill(
      now,
      async () => {
        const l = await admin.get<Row>("/api/admin/loop");
        const story = loopStory(l);
        rounds.replaceChildren(roundsTable(listIn<Row>(l, "rounds")));
        const conf = pick<Row>(l, "settings");
        settings.replaceChildren(
          conf
            ? facts(Object.entries(conf).map(([k, v]): [string, Node | string] => [label(k), show(k, v)]))
            : h("p", { class: "muted" }, "—"),
        );
        const model = listIn<Row>(l, "baseModels")[0];
        const experimentId = str(model, "activeExperiment.id") ?? str(story.round, "experimentId");
        return [
          h(
            "div",
            { class: "story" },
            h("p", {}, h("strong", {}, "Now: "), story.now),
            h("p", {}, h("strong", {}, "Next: "), story.next),
          ),
          ...(model ? modelDetails(model) : []),
          ...(experimentId
            ? [
                h(
                  "p",
                  {},
                  link(`/admin/experiments/${encodeURIComponent(experimentId)}`, "The running experiment →"),
                ),
              ]
            : []),
        ];
      },
      "the loop's status",
    );
  const root = pageRoot(
    "Loop",
    "The loop turns by itself: when enough new usable votes are in it takes a snapshot, trains challengers from the champion, A/B-tests them on live traffic and promotes the winner.",
    panel("Now and next", now),
    panel("Rounds", rounds),
    panel("Settings", settings),
  );
  return livePage("Loop", root, 5000, draw);
}
