/**
 * Training runs: the list with live progress, and one run's loss and implicit-accuracy curves
 * (training and held-out), refreshed while it runs.
 */
import { chartWidth, type LinePoint, lineChart } from "../charts.js";
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
  note,
  num,
  pageRoot,
  panel,
  pick,
  type Route,
  str,
} from "../view.js";

type Row = Record<string, unknown>;

const runId = (r: Row) => str(r, "id", "runId") ?? "?";
const step = (r: Row) => num(r, "step", "progress.step", "stepsDone");
const steps = (r: Row) =>
  num(r, "progress.totalSteps", "totalSteps", "steps", "progress.steps", "hyperParameters.steps");
const running = (r: Row) => ["queued", "running", "training", "pending"].includes(str(r, "status") ?? "");

function progressBar(r: Row): HTMLElement {
  const done = step(r);
  const total = steps(r);
  const status = str(r, "status");
  const fraction = status === "succeeded" ? 1 : done != null && total ? Math.min(1, done / total) : 0;
  return h(
    "div",
    { class: "progress-cell" },
    h("progress", { max: "1", value: String(fraction), "aria-label": `${runId(r)} progress` }),
    h("span", {}, done != null && total ? `${fmt.int(done)} / ${fmt.int(total)}` : fmt.pct(fraction, 0)),
  );
}

export function trainingRunsPage(): AdminPage {
  const table = h("div");
  const root = pageRoot(
    "Training runs",
    "Each round trains challengers from a snapshot of the votes; runs report their progress and metrics as they go.",
    panel("Runs", table),
  );
  const draw = () =>
    fill(
      table,
      async () => {
        const runs = listIn<Row>(
          await admin.get<unknown>("/api/admin/training-runs"),
          "runs",
          "trainingRuns",
          "items",
        );
        return sortableTable<Row>({
          caption: "Training runs",
          rows: runs,
          sortBy: 5,
          descending: true,
          empty: "No training runs yet: the loop starts one once enough votes are in.",
          columns: [
            {
              label: "Run",
              value: runId,
              render: (r) =>
                link(`/admin/training-runs/${encodeURIComponent(runId(r))}`, fmt.short(runId(r), 18)),
            },
            { label: "Status", value: (r) => str(r, "status"), render: (r) => badge(str(r, "status")) },
            { label: "Objective", value: (r) => `${str(r, "objective") ?? "?"} / ${str(r, "space") ?? "?"}` },
            {
              label: "Progress",
              value: (r) => (steps(r) ? (step(r) ?? 0) / (steps(r) as number) : null),
              render: progressBar,
            },
            {
              label: "Adapter",
              value: (r) => str(r, "adapterId"),
              render: (r) => fmt.short(str(r, "adapterId")),
              wide: true,
            },
            {
              label: "Started",
              value: (r) => str(r, "createdAt", "startedAt"),
              render: (r) => fmt.date(str(r, "createdAt", "startedAt")),
            },
          ],
        });
      },
      "training runs",
    );
  return livePage("Training runs", root, 4000, draw);
}

/** Turns the run's metric rows into one series per metric (`loss`, `heldout_loss` …). */
function curves(rows: Row[], match: (key: string) => boolean): LinePoint[] {
  const out: LinePoint[] = [];
  for (const r of rows) {
    const x = step(r);
    if (x == null) continue;
    const metrics = (pick<Row>(r, "metrics") ?? r) as Row;
    for (const [k, v] of Object.entries(metrics)) {
      if (typeof v === "number" && Number.isFinite(v) && match(k.toLowerCase())) {
        out.push({ x, y: v, series: k.replace(/_/g, " ") });
      }
    }
  }
  return out;
}

export function trainingRunPage(route: Route): AdminPage {
  const id = route.params.id ?? "";
  const summary = h("div");
  const charts = h("div", { class: "grid two" });
  const root = pageRoot(
    `Training run`,
    "Loss and implicit accuracy (how often the adapter prefers the chosen image more than the reference does), on training batches and held-out pairs.",
    h("p", {}, link("/admin/training-runs", "← All runs")),
    panel("Run", summary),
    charts,
  );
  let finished = false;
  const draw = () =>
    fill(
      summary,
      async () => {
        const run = await admin.get<Row>(`/api/admin/training-runs/${encodeURIComponent(id)}`);
        finished = !running(run);
        const rows = listIn<Row>(run, "curve", "progress", "history", "metricsOverTime", "points");
        const loss = curves(rows, (k) => k.includes("loss"));
        const acc = curves(rows, (k) => k.includes("acc") && !k.endsWith("_latent"));
        charts.replaceChildren(
          panel(
            "Loss",
            loss.length
              ? lineChart(loss, { caption: "Loss by step", x: "step →", y: "↑ loss", width: chartWidth(2) })
              : note("empty", "No loss reported yet."),
          ),
          panel(
            "Implicit accuracy",
            acc.length
              ? lineChart(acc, {
                  caption: "Implicit accuracy by step",
                  x: "step →",
                  y: "↑ accuracy",
                  reference: 0.5,
                  yDomain: [0, 1],
                  width: chartWidth(2),
                })
              : note("empty", "No accuracy reported yet."),
          ),
        );
        const m = pick<Row>(run, "metrics") ?? {};
        return facts([
          ["Run", h("code", {}, runId(run))],
          ["Status", badge(str(run, "status"))],
          ["Progress", progressBar(run)],
          ["Objective / space", `${str(run, "objective") ?? "?"} / ${str(run, "space") ?? "?"}`],
          ["Snapshot", fmt.short(str(run, "datasetSnapshotId", "snapshotId"), 24)],
          ["Adapter", str(run, "adapterId") ? link("/admin/adapters", str(run, "adapterId") as string) : "—"],
          ...Object.entries(m)
            .filter(([, v]) => typeof v === "number")
            .slice(0, 6)
            .map(([k, v]): [string, string] => [k.replace(/_/g, " "), fmt.num(v as number, 3)]),
          ...(str(run, "error") ? [["Error", str(run, "error") as string] as [string, string]] : []),
        ]);
      },
      "training runs",
    );
  return livePage(`Training run ${id}`, root, 3000, draw, async () => {
    if (!finished) await draw();
  });
}
