/**
 * The dashboard's charts, drawn with Observable Plot as SVG (see web/README.md for why): an
 * estimate with interval whiskers per row, and lines over a shared x with an optional band. Each
 * returns a <figure> with a caption; the numbers are also in the page's tables, so nothing is
 * only in a picture.
 */
import * as Plot from "@observablehq/plot";
import { h } from "./view.js";

const ACCENT = "var(--accent)";
const MUTED = "var(--muted)";
const PALETTE = ["#6d5efc", "#ff7a59", "#14a38b", "#e0a100", "#d6336c", "#3b82f6"];

/**
 * The width a chart should take: the page's content width, shared by `columns` panels side by
 * side (one column below 760 px, where the grid stacks them), less the panels' padding.
 */
export function chartWidth(columns = 1): number {
  const main = document.getElementById("main");
  const inner = (main?.clientWidth ?? 640) - 48;
  const cols = inner < 760 ? 1 : columns;
  const per = (inner - (cols - 1) * 16) / cols - (cols > 1 ? 44 : 40);
  return Math.round(Math.max(260, Math.min(960, per)));
}

function figure(svg: Element, caption: string, description: string): HTMLElement {
  // one accessible picture with one description: the marks' own labels would be read piecemeal
  for (const el of svg.querySelectorAll("[aria-label], [aria-description]")) {
    el.removeAttribute("aria-label");
    el.removeAttribute("aria-description");
  }
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", description);
  return h("figure", { class: "chart" }, svg as unknown as Node, h("figcaption", {}, caption));
}

export interface IntervalRow {
  label: string;
  estimate: number;
  lower: number;
  upper: number;
  highlight?: boolean;
}

/** One row per item: a dot at the estimate, a whisker from lower to upper, a reference line. */
export function intervalChart(
  rows: IntervalRow[],
  opts: { caption: string; x: string; reference?: number; width?: number; domain?: [number, number] },
): HTMLElement {
  const width = opts.width ?? chartWidth();
  const longest = Math.max(4, ...rows.map((r) => r.label.length));
  const svg = Plot.plot({
    width,
    height: Math.max(90, 34 * rows.length + 50),
    marginLeft: Math.min(width * 0.45, 12 + longest * 6.5),
    marginRight: 16,
    x: { label: opts.x, grid: true, ...(opts.domain ? { domain: opts.domain } : {}) },
    y: { label: null, domain: rows.map((r) => r.label) },
    marks: [
      ...(opts.reference === undefined
        ? []
        : [Plot.ruleX([opts.reference], { stroke: MUTED, strokeDasharray: "4 3" })]),
      Plot.ruleY(rows, { y: "label", x1: "lower", x2: "upper", stroke: ACCENT, strokeWidth: 2.5 }),
      Plot.tickX(rows, { y: "label", x: "lower", stroke: ACCENT }),
      Plot.tickX(rows, { y: "label", x: "upper", stroke: ACCENT }),
      Plot.dot(rows, {
        y: "label",
        x: "estimate",
        r: 5,
        fill: (d: IntervalRow) => (d.highlight ? "#ff7a59" : "#6d5efc"),
        stroke: "white",
        tip: true,
        title: (d: IntervalRow) =>
          `${d.label}: ${d.estimate.toFixed(3)} [${d.lower.toFixed(3)}, ${d.upper.toFixed(3)}]`,
      }),
    ],
  });
  const desc = rows
    .slice(0, 12)
    .map((r) => `${r.label} ${r.estimate.toFixed(2)} (${r.lower.toFixed(2)} to ${r.upper.toFixed(2)})`)
    .join("; ");
  return figure(svg, opts.caption, `${opts.caption}. ${desc}`);
}

export interface LinePoint {
  x: number | Date;
  y: number;
  series: string;
}

export interface BandPoint {
  x: number | Date;
  lower: number;
  upper: number;
}

/** Lines (one per series) over a shared x, with an optional shaded band and a reference line. */
export function lineChart(
  points: LinePoint[],
  opts: {
    caption: string;
    x: string;
    y: string;
    band?: BandPoint[];
    reference?: number;
    width?: number;
    yDomain?: [number, number];
  },
): HTMLElement {
  const series = [...new Set(points.map((p) => p.series))];
  const svg = Plot.plot({
    width: opts.width ?? chartWidth(),
    height: 260,
    marginLeft: 48,
    marginRight: 16,
    x: { label: opts.x, grid: true, ticks: Math.max(3, Math.floor((opts.width ?? chartWidth()) / 90)) },
    y: { label: opts.y, grid: true, ...(opts.yDomain ? { domain: opts.yDomain } : {}) },
    color: { domain: series, range: PALETTE, legend: series.length > 1 },
    marks: [
      ...(opts.band
        ? [Plot.areaY(opts.band, { x: "x", y1: "lower", y2: "upper", fill: ACCENT, fillOpacity: 0.18 })]
        : []),
      ...(opts.reference === undefined
        ? []
        : [Plot.ruleY([opts.reference], { stroke: MUTED, strokeDasharray: "4 3" })]),
      Plot.lineY(points, { x: "x", y: "y", stroke: "series", strokeWidth: 2, curve: "monotone-x" }),
      Plot.dot(points, Plot.pointerX({ x: "x", y: "y", fill: "series", r: 4, tip: true })),
    ],
  });
  const last = series.map((s) => {
    const mine = points.filter((p) => p.series === s);
    const end = mine[mine.length - 1];
    return end ? `${s} ends at ${end.y.toFixed(3)}` : s;
  });
  const figureEl = figure(svg, opts.caption, `${opts.caption}. ${last.join("; ")}.`);
  if (series.length > 1) {
    // the legend Plot adds sits beside the SVG; keep it inside the figure
    figureEl.classList.add("with-legend");
  }
  return figureEl;
}
