/**
 * Experiments: the list, and one experiment's evidence: each challenger's win rate against the
 * control with its anytime-valid band over votes and over time, the decision state and reason,
 * sample-ratio checks, guardrails, the per-category breakdown, sample pairs with their votes, and
 * the recorded decisions. Stop and promote are a person's override.
 */
import { type BandPoint, chartWidth, type LinePoint, lineChart } from "../charts.js";
import { admin } from "../client.js";
import { sortableTable } from "../table.js";
import {
  type AdminPage,
  actionButton,
  badge,
  facts,
  fill,
  fmt,
  h,
  link,
  listIn,
  livePage,
  note,
  num,
  pageRoot,
  panel,
  pick,
  type Route,
  str,
} from "../view.js";
import { samplePairs } from "./samplePairs.js";

type Row = Record<string, unknown>;

const expId = (e: Row) => str(e, "id") ?? "?";
const decisionText = (e: Row) => {
  const d = pick<Row>(e, "decision");
  return d ? `${str(d, "action") ?? ""}${str(d, "reason") ? `: ${str(d, "reason")}` : ""}` : "—";
};

export function experimentsPage(): AdminPage {
  const table = h("div");
  const draw = () =>
    fill(
      table,
      async () => {
        const rows = listIn<Row>(await admin.get<unknown>("/api/admin/experiments"), "experiments", "items");
        return sortableTable<Row>({
          caption: "Experiments",
          rows,
          sortBy: 4,
          descending: true,
          empty: "No experiments yet: the loop starts one when a round's challenger is ready.",
          columns: [
            {
              label: "Experiment",
              value: (e) => str(e, "name") ?? expId(e),
              render: (e) =>
                link(`/admin/experiments/${encodeURIComponent(expId(e))}`, str(e, "name") ?? expId(e)),
            },
            { label: "Status", value: (e) => str(e, "status"), render: (e) => badge(str(e, "status")) },
            {
              label: "Arms",
              value: (e) => listIn<Row>(pick(e, "arms")).length,
              render: (e) =>
                listIn<Row>(pick(e, "arms"))
                  .map((a) => str(a, "adapterId") ?? "base")
                  .join(" vs "),
              wide: true,
            },
            {
              label: "Votes",
              value: (e) => num(e, "votes"),
              render: (e) => fmt.int(num(e, "votes")),
              numeric: true,
            },
            {
              label: "Started",
              value: (e) => str(e, "startedAt", "createdAt"),
              render: (e) => fmt.date(str(e, "startedAt", "createdAt")),
            },
            { label: "Decision", value: decisionText, wide: true },
          ],
        });
      },
      "experiments",
    );
  const root = pageRoot(
    "Experiments",
    "Adapters A/B-tested on live traffic: challengers against the champion, on the same prompt and seed, until an anytime-valid decision.",
    panel("Experiments", table),
  );
  return livePage("Experiments", root, 5000, draw);
}

function armCharts(arm: Row, bar: number): HTMLElement[] {
  const path = listIn<Row>(pick(arm, "overTime"));
  const name = str(arm, "name") ?? "challenger";
  if (path.length === 0) return [note("empty", `No votes on ${name} yet.`)];
  const byVotes: LinePoint[] = path.map((p) => ({
    x: num(p, "n") ?? 0,
    y: num(p, "estimate") ?? 0.5,
    series: name,
  }));
  const band: BandPoint[] = path.map((p) => ({
    x: num(p, "n") ?? 0,
    lower: num(p, "lower") ?? 0,
    upper: num(p, "upper") ?? 1,
  }));
  const out = [
    lineChart(byVotes, {
      caption: `P(${name} ≻ control) with its anytime-valid band, by votes; dashed: the bar to clear`,
      x: "votes →",
      y: "↑ win rate",
      band,
      reference: bar,
      yDomain: [0, 1],
      width: chartWidth(2),
    }),
  ];
  const timed = path.filter((p) => num(p, "at") != null || str(p, "at"));
  if (timed.length > 1) {
    const at = (p: Row) => new Date((num(p, "at") ?? str(p, "at")) as number | string);
    out.push(
      lineChart(
        timed.map((p) => ({ x: at(p), y: num(p, "estimate") ?? 0.5, series: name })),
        {
          caption: `The same over time`,
          x: "time →",
          y: "↑ win rate",
          band: timed.map((p) => ({ x: at(p), lower: num(p, "lower") ?? 0, upper: num(p, "upper") ?? 1 })),
          reference: bar,
          yDomain: [0, 1],
          width: chartWidth(2),
        },
      ),
    );
  }
  return out;
}

const interval = (s: Row | undefined) =>
  s && num(s, "estimate") != null
    ? `${fmt.num(num(s, "estimate"), 3)} [${fmt.num(num(s, "lower"), 3)}, ${fmt.num(num(s, "upper"), 3)}]`
    : "—";

export function experimentPage(route: Route): AdminPage {
  const id = route.params.id ?? "";
  const head = h("div");
  const body = h("div");
  const root = pageRoot(
    "Experiment",
    "Win rate of each challenger against the control, in the challenger's view (ties count half), with intervals that stay valid however often they are looked at.",
    h("p", {}, link("/admin/experiments", "← All experiments")),
    head,
    body,
  );
  let running = false;

  const draw = () =>
    fill(
      head,
      async () => {
        const e = await admin.get<Row>(`/api/admin/experiments/${encodeURIComponent(id)}`);
        running = str(e, "status") === "running";
        const arms = listIn<Row>(pick(e, "arms"));
        const challengers = arms.filter((a) => str(a, "role") !== "control");
        const margin = num(e, "settings.margin") ?? 0;
        const bar = num(e, "ruleNow.bar") ?? 0.5 + margin;
        const decision = pick<Row>(e, "decision");
        const ruleNow = pick<Row>(e, "ruleNow");
        document.title = `${str(e, "name") ?? id} — prefloop dashboard`;

        const actions = h("div", { class: "actions page-actions" });
        if (running) {
          actions.append(
            actionButton(
              "Stop",
              async () => {
                await admin.post(`/api/admin/experiments/${encodeURIComponent(id)}/stop`, {
                  reason: "stopped from the dashboard",
                });
                return "Experiment stopped.";
              },
              {
                kind: "danger",
                confirm: "Stop this experiment now? Its votes are kept.",
                onDone: () => void draw(),
              },
            ),
            ...challengers.map((a) =>
              actionButton(
                `Promote ${str(a, "name")}`,
                async () => {
                  await admin.post(`/api/admin/experiments/${encodeURIComponent(id)}/promote`, {
                    arm: str(a, "name"),
                  });
                  return `${str(a, "name")} promoted.`;
                },
                {
                  kind: "primary",
                  confirm: `Promote ${str(a, "name")} (${str(a, "adapterId")}) to champion, overriding the rule?`,
                  onDone: () => void draw(),
                },
              ),
            ),
          );
        }

        const armStats = (a: Row) => (pick<Row>(a, "statistics") ?? {}) as Row;
        body.replaceChildren(
          ...challengers.map((a) =>
            panel(
              `${str(a, "name")} vs control`,
              h("div", { class: "grid two" }, ...armCharts(a, bar)),
              h(
                "p",
                { class: "muted" },
                `State: `,
                badge(str(a, "state") ?? "undecided"),
                ` ${str(a, "reason") ?? ""}`,
              ),
            ),
          ),
          panel(
            "Arms",
            sortableTable<Row>({
              caption: "Arms",
              rows: arms,
              columns: [
                { label: "Arm", value: (a) => str(a, "name") },
                {
                  label: "Adapter",
                  value: (a) => str(a, "adapterId") ?? "base",
                  render: (a) => h("code", {}, str(a, "adapterId") ?? "base"),
                },
                { label: "Role", value: (a) => str(a, "role") },
                {
                  label: "Traffic",
                  value: (a) => num(a, "allocation"),
                  render: (a) => fmt.pct(num(a, "allocation"), 0),
                  numeric: true,
                  wide: true,
                },
                {
                  label: "Votes",
                  value: (a) => num(armStats(a), "n"),
                  render: (a) => fmt.int(num(armStats(a), "n")),
                  numeric: true,
                },
                {
                  label: "W / L / T",
                  value: (a) => num(armStats(a), "wins"),
                  render: (a) =>
                    str(a, "role") === "control"
                      ? "—"
                      : `${fmt.int(num(armStats(a), "wins"))} / ${fmt.int(num(armStats(a), "losses"))} / ${fmt.int(num(armStats(a), "ties"))}`,
                  wide: true,
                },
                {
                  label: "Win rate [interval]",
                  value: (a) => num(armStats(a), "estimate"),
                  render: (a) => (str(a, "role") === "control" ? "—" : interval(armStats(a))),
                  numeric: true,
                },
                {
                  label: "p",
                  value: (a) => num(armStats(a), "pValue"),
                  render: (a) => (str(a, "role") === "control" ? "—" : fmt.p(num(armStats(a), "pValue"))),
                  numeric: true,
                  wide: true,
                },
                {
                  label: "State",
                  value: (a) => str(a, "state"),
                  render: (a) =>
                    str(a, "role") === "control" ? "control" : badge(str(a, "state") ?? "undecided"),
                },
              ],
            }),
          ),
          h(
            "div",
            { class: "grid two" },
            panel(
              "Sample-ratio checks",
              sortableTable<Row>({
                caption: "Sample-ratio mismatch checks",
                rows: listIn<Row>(pick(e, "srm")),
                empty: "No checks yet.",
                columns: [
                  { label: "Check", value: (s) => str(s, "check") },
                  {
                    label: "p",
                    value: (s) => num(s, "pValue"),
                    render: (s) => fmt.p(num(s, "pValue")),
                    numeric: true,
                  },
                  {
                    label: "Alarm",
                    value: (s) => String(pick(s, "alarm") ?? false),
                    render: (s) => badge(pick(s, "alarm") ? "alarm" : "ok"),
                  },
                ],
              }),
            ),
            panel(
              "Guardrails",
              sortableTable<Row>({
                caption: "Guardrails per arm",
                rows: arms,
                columns: [
                  { label: "Arm", value: (a) => str(a, "name") },
                  {
                    label: "Failures",
                    value: (a) => num(a, "guardrails.failureRate"),
                    render: (a) =>
                      `${fmt.pct(num(a, "guardrails.failureRate"))} of ${fmt.int(num(a, "guardrails.generations"))}`,
                    numeric: true,
                  },
                  {
                    label: "Median latency",
                    value: (a) => num(a, "guardrails.latencyMedianMs"),
                    render: (a) => {
                      const ms = num(a, "guardrails.latencyMedianMs");
                      return ms == null ? "—" : `${(ms / 1000).toFixed(2)} s`;
                    },
                    numeric: true,
                  },
                  {
                    label: "Both bad",
                    value: (a) => num(a, "guardrails.bothBadRate"),
                    render: (a) => fmt.pct(num(a, "guardrails.bothBadRate")),
                    numeric: true,
                  },
                  {
                    label: "Alarms",
                    value: (a) => listIn(pick(a, "guardrails.alarms")).length,
                    render: (a) => {
                      const al = listIn<Row>(pick(a, "guardrails.alarms"));
                      return al.length
                        ? al.map((x) => str(x, "guardrail", "name", "reason") ?? "alarm").join(", ")
                        : "none";
                    },
                  },
                ],
              }),
            ),
          ),
          panel(
            "By category",
            sortableTable<Row>({
              caption: "Win rate per prompt category",
              rows: listIn<Row>(pick(e, "byCategory")),
              sortBy: 1,
              descending: true,
              empty: "No votes yet.",
              columns: [
                { label: "Category", value: (c) => str(c, "category") },
                {
                  label: "Votes",
                  value: (c) => num(c, "votes"),
                  render: (c) => fmt.int(num(c, "votes")),
                  numeric: true,
                },
                ...challengers.map((a) => ({
                  label: `${str(a, "name")} win rate`,
                  value: (c: Row) =>
                    num(
                      listIn<Row>(pick(c, "arms")).find((x) => str(x, "arm") === str(a, "name")),
                      "estimate",
                    ),
                  render: (c: Row) =>
                    interval(listIn<Row>(pick(c, "arms")).find((x) => str(x, "arm") === str(a, "name"))),
                  numeric: true,
                })),
              ],
            }),
          ),
          panel("Sample pairs and their votes", samples),
          panel(
            "Decisions",
            sortableTable<Row>({
              caption: "Recorded decisions",
              rows: listIn<Row>(pick(e, "decisions")),
              sortBy: 0,
              descending: true,
              empty: "No decisions recorded yet.",
              columns: [
                { label: "When", value: (d) => str(d, "at"), render: (d) => fmt.date(str(d, "at")) },
                { label: "Action", value: (d) => str(d, "action"), render: (d) => badge(str(d, "action")) },
                { label: "Arm", value: (d) => str(d, "arm") },
                { label: "By", value: (d) => str(d, "actor"), wide: true },
                { label: "Reason", value: (d) => str(d, "reason") },
              ],
            }),
          ),
        );
        void loadSamples();
        return [
          h("h2", { class: "exp-name" }, str(e, "name") ?? id, " ", badge(str(e, "status"))),
          facts([
            ["Votes", fmt.int(num(e, "votes"))],
            [
              "Decision",
              decision
                ? h("span", {}, badge(str(decision, "action")), ` ${str(decision, "reason") ?? ""}`)
                : "none yet",
            ],
            [
              "The rule now",
              ruleNow
                ? `${str(ruleNow, "action") ?? "continue"}${str(ruleNow, "reason") ? `: ${str(ruleNow, "reason")}` : ""}`
                : "—",
            ],
            ["Bar to clear", fmt.num(bar, 3)],
            ["Error rate per arm", fmt.num(num(e, "alphaPerArm"), 4)],
            ["Started", fmt.date(str(e, "startedAt", "createdAt"))],
          ]),
          h("p", { class: "muted" }, `Method: ${str(e, "method.name", "method") ?? "—"}.`),
          actions,
        ];
      },
      "experiments",
    );

  const samples = h("div");
  const loadSamples = () => fill(samples, () => samplePairs(id), "votes");

  return livePage("Experiment", root, 6000, draw, async () => {
    if (running) await draw();
  });
}
