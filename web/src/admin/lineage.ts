/**
 * The adapters' lineage as a tree: the base model at the root, each adapter under the one it was
 * trained from, so the line of champions reads top to bottom and a round's challengers branch off
 * it. Nested lists with drawn connectors: screen readers announce the levels, phones wrap the cards.
 */
import { h } from "./view.js";

export interface LineageNode {
  id: string;
  parent: string | null;
  status: string;
  /** Small facts under the name (objective / space, snapshot, a metric). */
  details: string[];
}

export function lineageTree(nodes: LineageNode[], base: string): HTMLElement {
  const known = new Set(nodes.map((n) => n.id));
  const children = new Map<string | null, LineageNode[]>();
  for (const n of nodes) {
    // a parent that is not registered here hangs under the base, marked as such
    const parent = n.parent && known.has(n.parent) ? n.parent : null;
    children.set(parent, [...(children.get(parent) ?? []), n]);
  }
  const branch = (parent: string | null, seen: Set<string>): HTMLElement | null => {
    const kids = (children.get(parent) ?? []).filter((k) => !seen.has(k.id));
    if (kids.length === 0) return null;
    return h(
      "ul",
      {},
      ...kids.map((k) => {
        const next = new Set(seen).add(k.id);
        const orphan = k.parent && !known.has(k.parent) ? [`parent ${k.parent} not registered here`] : [];
        const card = h(
          "div",
          { class: `node node-${k.status}` },
          h("span", { class: "dot", "aria-hidden": "true" }),
          h("code", {}, k.id),
          h("span", { class: `badge badge-${k.status}` }, k.status === "champion" ? "★ champion" : k.status),
          h("small", {}, [...k.details, ...orphan].join(" · ")),
        );
        const sub = branch(k.id, next);
        return h("li", {}, card, ...(sub ? [sub] : []));
      }),
    );
  };
  const rootList = branch(null, new Set());
  return h(
    "figure",
    { class: "lineage" },
    h(
      "ul",
      { class: "tree", "aria-label": `Lineage from the base model ${base}` },
      h(
        "li",
        {},
        h(
          "div",
          { class: "node node-base" },
          h("span", { class: "dot", "aria-hidden": "true" }),
          h("strong", {}, base),
          h("small", {}, "base model"),
        ),
        ...(rootList ? [rootList] : []),
      ),
    ),
    h(
      "figcaption",
      {},
      "Each adapter sits under the adapter it was trained from; ★ marks the champion that serves voters now.",
    ),
  );
}
