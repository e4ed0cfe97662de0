/**
 * Adapters: the lineage as a tree from the base model through every champion (each adapter
 * under the one it was trained from), and a table with objective, space, snapshot and metrics;
 * download, promote and retire from the table.
 */
import { admin } from "../client.js";
import { lineageTree } from "../lineage.js";
import { sortableTable } from "../table.js";
import {
  type AdminPage,
  actionButton,
  badge,
  fill,
  fmt,
  h,
  listIn,
  note,
  pageRoot,
  panel,
  pick,
  str,
} from "../view.js";

type Row = Record<string, unknown>;

const id = (a: Row) => str(a, "id", "adapterId") ?? "?";
const parent = (a: Row) => str(a, "parentAdapterId", "parentId", "parent");
const status = (a: Row) => str(a, "status") ?? "candidate";
const metricsText = (a: Row, most = 4) => {
  const m = pick<Record<string, unknown>>(a, "metrics") ?? {};
  return Object.entries(m)
    .filter(([, v]) => typeof v === "number")
    .slice(0, most)
    .map(([k, v]) => `${k.replace(/_/g, " ")} ${fmt.num(v as number, 3)}`)
    .join(" · ");
};

/** Opens the adapter's weights (a signed, expiring URL from the API); names the other files. */
async function download(adapterId: string): Promise<string> {
  const r = await admin.get<Row>(`/api/admin/adapters/${encodeURIComponent(adapterId)}/files`);
  const files = listIn<Row>(r, "files");
  const weights = files.find((f) => (str(f, "name") ?? "").endsWith(".safetensors")) ?? files[0];
  const url = str(weights, "url");
  if (!url) throw new Error("The server gave no download link.");
  window.open(url, "_blank", "noopener");
  return `Downloading ${str(weights, "name") ?? adapterId}${
    files.length > 1
      ? ` (also: ${files
          .filter((f) => f !== weights)
          .map((f) => str(f, "name"))
          .join(", ")})`
      : ""
  }.`;
}

export function adaptersPage(): AdminPage {
  const tree = h("div");
  const table = h("div");
  const root = pageRoot(
    "Adapters",
    "Every LoRA adapter trained from the votes: where it comes from, how it was trained, and how it did.",
    panel("Lineage", tree),
    panel("All adapters", table),
  );

  const draw = async () => {
    let adapters: Row[] = [];
    let base = "base model";
    const ok = await fill(
      tree,
      async () => {
        const body = await admin.get<unknown>("/api/admin/adapters");
        adapters = listIn<Row>(body, "adapters", "items");
        base = str(body, "baseModelId", "baseModel") ?? str(adapters[0], "baseModelId") ?? base;
        if (adapters.length === 0)
          return note("empty", "No adapters yet: the loop trains the first one once enough votes are in.");
        return lineageTree(
          adapters.map((a) => ({
            id: id(a),
            parent: parent(a),
            status: status(a),
            details: [
              `${str(a, "objective") ?? "?"} / ${str(a, "space") ?? "?"}`,
              str(a, "datasetSnapshotId") ? `snapshot ${str(a, "datasetSnapshotId")}` : "",
              metricsText(a, 2),
            ].filter(Boolean),
          })),
          base,
        );
      },
      "adapters",
    );
    if (!ok) {
      table.replaceChildren();
      return;
    }
    table.replaceChildren(
      sortableTable<Row>({
        caption: "Adapters",
        rows: adapters,
        sortBy: 6,
        descending: true,
        rowKey: id,
        empty: "No adapters yet.",
        columns: [
          { label: "Adapter", value: id, render: (a) => h("code", {}, id(a)) },
          { label: "Status", value: status, render: (a) => badge(status(a)) },
          { label: "Objective", value: (a) => str(a, "objective") },
          { label: "Space", value: (a) => str(a, "space") },
          { label: "Parent", value: (a) => parent(a) ?? "base", wide: true },
          {
            label: "Snapshot",
            value: (a) => str(a, "datasetSnapshotId", "snapshotId"),
            render: (a) => fmt.short(str(a, "datasetSnapshotId", "snapshotId")),
            wide: true,
          },
          {
            label: "Created",
            value: (a) => str(a, "createdAt"),
            render: (a) => fmt.date(str(a, "createdAt")),
          },
          { label: "Metrics", value: (a) => metricsText(a), wide: true },
          {
            label: "Actions",
            fixed: true,
            value: () => null,
            render: (a) =>
              h(
                "div",
                { class: "actions" },
                actionButton("Download", () => download(id(a))),
                ...(status(a) !== "champion"
                  ? [
                      actionButton(
                        "Promote",
                        async () => {
                          await admin.post(`/api/admin/adapters/${encodeURIComponent(id(a))}/promote`, {
                            reason: "promoted from the dashboard",
                          });
                          return `${id(a)} is the champion now.`;
                        },
                        {
                          kind: "primary",
                          confirm: `Make ${id(a)} the champion that serves voters?`,
                          onDone: () => void draw(),
                        },
                      ),
                    ]
                  : []),
                ...(status(a) !== "retired"
                  ? [
                      actionButton(
                        "Retire",
                        async () => {
                          await admin.post(`/api/admin/adapters/${encodeURIComponent(id(a))}/retire`, {
                            reason: "retired from the dashboard",
                          });
                          return `${id(a)} is retired.`;
                        },
                        { kind: "danger", confirm: `Retire ${id(a)}?`, onDone: () => void draw() },
                      ),
                    ]
                  : []),
              ),
          },
        ],
      }),
    );
  };

  return {
    title: "Adapters",
    root,
    mount: draw,
    unmount() {},
  };
}
