/**
 * The dashboard's one table: columns sort by clicking (or Enter / Space on) their header, the
 * sort order is announced through `aria-sort`, and on narrow screens the table scrolls inside a
 * labelled, keyboard-focusable region instead of squeezing its columns.
 */
import { h } from "./view.js";

export interface Column<T> {
  label: string;
  /** The value sorted on (and shown, unless `render` is given). */
  value: (row: T) => number | string | null | undefined;
  render?: (row: T) => Node | string;
  numeric?: boolean;
  /** Not sortable (action buttons). */
  fixed?: boolean;
  /** Hidden below 640 px wide. */
  wide?: boolean;
}

export interface TableOptions<T> {
  caption: string;
  columns: Column<T>[];
  rows: T[];
  sortBy?: number;
  descending?: boolean;
  empty?: string;
  rowKey?: (row: T) => string;
}

function compare(a: unknown, b: unknown): number {
  if (a == null && b == null) return 0;
  if (a == null) return 1; // missing values last, whichever the direction
  if (b == null) return -1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b), "en", { numeric: true });
}

export function sortableTable<T>(opts: TableOptions<T>): HTMLElement {
  let sortBy = opts.sortBy ?? -1;
  let descending = opts.descending ?? false;
  const tbody = h("tbody");
  const heads = opts.columns.map((c, i) => {
    const th = h("th", { scope: "col", class: c.numeric ? "num" : "" });
    if (c.wide) th.classList.add("wide");
    if (c.fixed) {
      th.append(h("span", { class: "visually-hidden" }, c.label));
      return th;
    }
    const b = h(
      "button",
      { type: "button", class: "sort" },
      c.label,
      h("span", { class: "arrow", "aria-hidden": "true" }),
    );
    b.addEventListener("click", () => {
      descending = sortBy === i ? !descending : Boolean(c.numeric);
      sortBy = i;
      draw();
    });
    th.append(b);
    return th;
  });

  const draw = () => {
    heads.forEach((th, i) => {
      if (i === sortBy) th.setAttribute("aria-sort", descending ? "descending" : "ascending");
      else th.removeAttribute("aria-sort");
    });
    const col = opts.columns[sortBy];
    const rows = [...opts.rows];
    if (col) {
      rows.sort((a, b) => {
        const va = col.value(a);
        const vb = col.value(b);
        if (va == null || vb == null) return compare(va, vb);
        return descending ? compare(vb, va) : compare(va, vb);
      });
    }
    tbody.replaceChildren(
      ...rows.map((r) => {
        const tr = h("tr");
        if (opts.rowKey) tr.dataset.key = opts.rowKey(r);
        for (const c of opts.columns) {
          const v = c.render ? c.render(r) : c.value(r);
          const td = h(
            "td",
            { class: c.numeric ? "num" : "" },
            v == null ? "—" : v instanceof Node ? v : String(v),
          );
          if (c.wide) td.classList.add("wide");
          tr.append(td);
        }
        return tr;
      }),
    );
  };
  draw();

  if (opts.rows.length === 0) {
    return h("p", { class: "note note-empty", role: "status" }, opts.empty ?? "Nothing here yet.");
  }
  const table = h(
    "table",
    { class: "data" },
    h("caption", { class: "visually-hidden" }, opts.caption),
    h("thead", {}, h("tr", {}, ...heads)),
    tbody,
  );
  return h("div", { class: "table-wrap", role: "region", "aria-label": opts.caption, tabindex: "0" }, table);
}
