/** Dataset snapshots: votes frozen into Parquet files for training, with counts, exclusions and downloads. */
import { admin } from "../client.js";
import { sortableTable } from "../table.js";
import {
  type AdminPage,
  actionButton,
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

const snapId = (s: Row) => str(s, "id", "snapshotId") ?? "?";
const count = (s: Row, ...k: string[]) => num(s, ...k.flatMap((x) => [x, `counts.${x}`, `rows.${x}`]));
/** Rows in one split: from the split's file(s), or the counts. */
const split = (s: Row, name: string) => {
  const files = listIn<Row>(pick(s, "files")).filter((f) => str(f, "split") === name);
  return files.length ? files.reduce((n, f) => n + (num(f, "rows") ?? 0), 0) : count(s, name);
};
const exclusions = (s: Row) => {
  const e = pick<unknown>(s, "exclusions", "excluded", "counts.excluded");
  if (typeof e === "number") return fmt.int(e);
  if (e && typeof e === "object")
    return (
      Object.entries(e as Row)
        .filter(([, v]) => typeof v === "number" && v > 0)
        .map(([k, v]) => `${k.replace(/_/g, " ")} ${fmt.int(v as number)}`)
        .join(" · ") || "none"
    );
  return "—";
};

/** Opens one split's Parquet file (a signed, expiring URL from the API). */
async function download(id: string, splitName: string): Promise<string> {
  const r = await admin.get<Row>(`/api/admin/snapshots/${encodeURIComponent(id)}/files/${splitName}`);
  const url = str(r, "url");
  if (!url) throw new Error("The server gave no download link.");
  window.open(url, "_blank", "noopener");
  return `Downloading ${splitName}.parquet of ${id}.`;
}

export function snapshotsPage(): AdminPage {
  const table = h("div");
  const draw = () =>
    fill(
      table,
      async () => {
        const rows = listIn<Row>(await admin.get<unknown>("/api/admin/snapshots"), "snapshots", "items");
        return sortableTable<Row>({
          caption: "Snapshots",
          rows,
          sortBy: 1,
          descending: true,
          empty: "No snapshots yet: take one now, or the loop takes one when a round starts.",
          columns: [
            { label: "Snapshot", value: snapId, render: (s) => h("code", {}, fmt.short(snapId(s), 20)) },
            {
              label: "Cut-off",
              value: (s) => str(s, "cutoff", "cutoffAt", "createdAt"),
              render: (s) => fmt.date(str(s, "cutoff", "cutoffAt", "createdAt")),
            },
            {
              label: "Votes",
              value: (s) => count(s, "votes", "rows", "total"),
              render: (s) => fmt.int(count(s, "votes", "rows", "total")),
              numeric: true,
            },
            {
              label: "Train",
              value: (s) => split(s, "train"),
              render: (s) => fmt.int(split(s, "train")),
              numeric: true,
              wide: true,
            },
            {
              label: "Validation",
              value: (s) => split(s, "validation"),
              render: (s) => fmt.int(split(s, "validation")),
              numeric: true,
              wide: true,
            },
            {
              label: "Test",
              value: (s) => split(s, "test"),
              render: (s) => fmt.int(split(s, "test")),
              numeric: true,
              wide: true,
            },
            { label: "Excluded", value: exclusions },
            {
              label: "Actions",
              fixed: true,
              value: () => null,
              render: (s) =>
                h(
                  "div",
                  { class: "actions" },
                  ...listIn<Row>(pick(s, "files")).map((f) =>
                    actionButton(`${str(f, "split")}.parquet`, () =>
                      download(snapId(s), str(f, "split") ?? "train"),
                    ),
                  ),
                ),
            },
          ],
        });
      },
      "snapshots",
    );
  const take = actionButton(
    "Take a snapshot now",
    async () => {
      const r = await admin.post<Row>("/api/admin/snapshots", {});
      return `Snapshot ${snapId(r)} taken.`;
    },
    { kind: "primary", onDone: () => void draw() },
  );
  const root = pageRoot(
    "Snapshots",
    "Usable votes up to a cut-off, frozen into train / validation / test Parquet files in Pick-a-Pic v2's columns (too-fast votes, gold pairs and excluded voters left out).",
    h("div", { class: "toolbar" }, take),
    panel("Snapshots", table),
  );
  return { title: "Snapshots", root, mount: async () => void (await draw()), unmount() {} };
}
