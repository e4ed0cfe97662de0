/**
 * The dashboard's building blocks: pages, panels that load their own data (and say so when a
 * feature is not available on this server), number formats, buttons that confirm and report.
 */
import { h } from "../ui.js";
import { ApiRequestError, NotAvailable } from "./client.js";

export { h };

export interface AdminPage {
  title: string;
  root: HTMLElement;
  mount(): Promise<void>;
  unmount(): void;
}

/** Route parameters (`/admin/experiments/:id` → `{id}`) and the query string. */
export interface Route {
  params: Record<string, string>;
  query: URLSearchParams;
}

export function pageRoot(title: string, intro: string, ...children: Node[]): HTMLElement {
  return h(
    "div",
    { class: "page admin-page" },
    h("h1", {}, title),
    h("p", { class: "intro" }, intro),
    ...children,
  );
}

export function panel(title: string, ...children: (Node | string)[]): HTMLElement {
  const id = `p-${title.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
  return h("section", { class: "panel", "aria-labelledby": id }, h("h2", { id }, title), ...children);
}

/** A message in place of content: loading, empty, not available, or an error. */
export function note(kind: "loading" | "empty" | "unavailable" | "error", text: string): HTMLElement {
  return h("p", { class: `note note-${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

/**
 * Fills `box` with what `render` builds; shows loading first, and instead of throwing a
 * "not available" note (the server lacks the route) or the API's error message.
 */
export async function fill(
  box: HTMLElement,
  render: () => Promise<Node | Node[]>,
  what: string,
): Promise<boolean> {
  if (!box.hasChildNodes()) box.replaceChildren(note("loading", `Loading ${what}…`));
  try {
    const content = await render();
    box.replaceChildren(...(Array.isArray(content) ? content : [content]));
    return true;
  } catch (err) {
    if (err instanceof NotAvailable) {
      box.replaceChildren(note("unavailable", `Not available on this server yet: ${what}.`));
    } else if (err instanceof ApiRequestError) {
      box.replaceChildren(note("error", `Could not load ${what}: ${err.message}`));
    } else {
      box.replaceChildren(note("error", `Could not show ${what}: ${String(err)}`));
    }
    return false;
  }
}

export const fmt = {
  int: (n: number | null | undefined) => (n == null ? "—" : Math.round(n).toLocaleString("en-US")),
  num: (n: number | null | undefined, digits = 3) => {
    if (n == null || !Number.isFinite(n)) return "—";
    if (n !== 0 && Math.abs(n) < 10 ** -digits) return n.toPrecision(2); // 1e-4 stays 0.00010, not 0
    return Number(n.toFixed(digits)).toString();
  },
  pct: (n: number | null | undefined, digits = 1) =>
    n == null || !Number.isFinite(n) ? "—" : `${(n * 100).toFixed(digits)} %`,
  p: (n: number | null | undefined) =>
    n == null || !Number.isFinite(n) ? "—" : n < 0.001 ? "< 0.001" : n.toFixed(3),
  date: (s: string | null | undefined) => {
    if (!s) return "—";
    const d = new Date(s);
    return Number.isNaN(d.getTime())
      ? s
      : d.toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short" });
  },
  ago: (s: string | null | undefined) => {
    if (!s) return "—";
    const sec = Math.round((Date.now() - new Date(s).getTime()) / 1000);
    if (!Number.isFinite(sec)) return s;
    if (sec < 60) return `${Math.max(0, sec)} s ago`;
    if (sec < 3600) return `${Math.round(sec / 60)} min ago`;
    if (sec < 86400) return `${Math.round(sec / 3600)} h ago`;
    return `${Math.round(sec / 86400)} d ago`;
  },
  short: (id: string | null | undefined, keep = 14) =>
    id == null ? "—" : id.length > keep ? `${id.slice(0, keep)}…` : id,
};

/** A pill for a state word (running, champion, flagged…), coloured by its meaning. */
export function badge(state: string | null | undefined): HTMLElement {
  const s = state ?? "—";
  return h(
    "span",
    { class: `badge badge-${s.replace(/[^a-z_]/gi, "").toLowerCase()}` },
    s.replace(/_/g, " "),
  );
}

/** A link inside the dashboard (client-side navigation). */
export function link(href: string, text: string, attrs: Record<string, string> = {}): HTMLAnchorElement {
  return h("a", { href, "data-link": "", ...attrs }, text);
}

/** Key facts as a definition list of small cards. */
export function facts(items: [string, Node | string][]): HTMLElement {
  return h(
    "dl",
    { class: "facts" },
    ...items.map(([k, v]) => h("div", { class: "fact" }, h("dt", {}, k), h("dd", {}, v))),
  );
}

/**
 * A button that runs an admin action: asks first when `confirm` is given, disables itself while
 * it runs, and reports the outcome in the page's live region.
 */
export function actionButton(
  label: string,
  run: () => Promise<string>,
  opts: { confirm?: string; kind?: "primary" | "danger" | "plain"; onDone?: () => void } = {},
): HTMLButtonElement {
  const b = h("button", { type: "button", class: `btn btn-${opts.kind ?? "plain"}` }, label);
  b.addEventListener("click", async () => {
    if (opts.confirm && !window.confirm(opts.confirm)) return;
    b.disabled = true;
    try {
      announce(await run());
      opts.onDone?.();
    } catch (err) {
      announce(err instanceof Error ? err.message : String(err), true);
    } finally {
      b.disabled = false;
    }
  });
  return b;
}

/** Says something in the page's live region (read by screen readers, shown as a toast). */
export function announce(text: string, error = false): void {
  const box = document.getElementById("toast");
  if (!box) return;
  box.textContent = text;
  box.className = error ? "toast toast-error" : "toast";
  box.hidden = false;
  window.setTimeout(() => {
    if (box.textContent === text) box.hidden = true;
  }, 5000);
}

/** Finds the first array among a response's fields (APIs name their lists differently). */
export function listIn<T>(body: unknown, ...keys: string[]): T[] {
  if (Array.isArray(body)) return body as T[];
  const o = (body ?? {}) as Record<string, unknown>;
  for (const k of keys) if (Array.isArray(o[k])) return o[k] as T[];
  return [];
}

/** Re-runs `tick` every `ms` while the page is shown; returns the stop function. */
/**
 * A page that draws when it is shown and then runs `refresh` (by default the same drawing) every
 * `ms` while it stays shown.
 */
export function livePage(
  title: string,
  root: HTMLElement,
  ms: number,
  draw: () => Promise<unknown>,
  refresh: () => Promise<unknown> = draw,
): AdminPage {
  let stop = () => {};
  return {
    title,
    root,
    async mount() {
      await draw();
      stop = every(ms, refresh);
    },
    unmount() {
      stop();
    },
  };
}

export function every(ms: number, tick: () => Promise<unknown>): () => void {
  let alive = true;
  let timer = 0;
  const loop = async () => {
    if (!alive) return;
    await tick().catch(() => undefined);
    if (alive) timer = window.setTimeout(loop, ms);
  };
  timer = window.setTimeout(loop, ms);
  return () => {
    alive = false;
    window.clearTimeout(timer);
  };
}

/** The first of several field names a row has (APIs are read by name, tolerant of spelling). */
export function pick<T = unknown>(row: unknown, ...keys: string[]): T | undefined {
  const o = (row ?? {}) as Record<string, unknown>;
  for (const k of keys) {
    const parts = k.split(".");
    let v: unknown = o;
    for (const p of parts) v = v && typeof v === "object" ? (v as Record<string, unknown>)[p] : undefined;
    if (v !== undefined && v !== null) return v as T;
  }
  return undefined;
}

export const num = (row: unknown, ...keys: string[]): number | null => {
  const v = pick(row, ...keys);
  return typeof v === "number" && Number.isFinite(v) ? v : null;
};
export const str = (row: unknown, ...keys: string[]): string | null => {
  const v = pick(row, ...keys);
  return v == null ? null : String(v);
};
