/**
 * Sample pairs of an experiment with their votes, as people saw them: the prompt, the left and
 * right images (with the model behind each), and the choice, the chosen side outlined.
 */
import { admin } from "../client.js";
import { badge, fmt, h, note, str } from "../view.js";

type Row = Record<string, unknown>;

function side(v: Row, which: "left" | "right"): { id: string | null; model: string } {
  const leftIsB = str(v, "leftIs") === "b";
  const g = (which === "left") !== leftIsB ? "generationA" : "generationB";
  return { id: str(v, `${g}.id`), model: str(v, `${g}.adapterId`) ?? "base model" };
}

function thumb(v: Row, which: "left" | "right"): HTMLElement {
  const s = side(v, which);
  const chosen = str(v, "choice") === which;
  return h(
    "figure",
    { class: chosen ? "thumb chosen" : "thumb" },
    s.id
      ? h("img", {
          src: `/api/admin/generations/${encodeURIComponent(s.id)}/image`,
          alt: `${which}: ${s.model}${chosen ? " (chosen)" : ""}`,
          width: "96",
          height: "96",
          loading: "lazy",
        })
      : h("div", { class: "pg-wait" }, "—"),
    h("figcaption", {}, h("code", {}, s.model)),
  );
}

export async function samplePairs(experimentId: string, limit = 12): Promise<Node> {
  const r = await admin.get<{ votes: Row[] }>(
    `/api/admin/votes?experimentId=${encodeURIComponent(experimentId)}&limit=${limit}`,
  );
  if (r.votes.length === 0) return note("empty", "No votes on this experiment yet.");
  return h(
    "ul",
    { class: "samples" },
    ...r.votes.map((v) =>
      h(
        "li",
        { class: "sample" },
        h("p", { class: "sample-prompt" }, str(v, "prompt") ?? ""),
        h("div", { class: "sample-pair" }, thumb(v, "left"), thumb(v, "right")),
        h(
          "p",
          { class: "sample-vote" },
          badge(str(v, "choice")),
          " ",
          h("small", {}, fmt.ago(str(v, "createdAt"))),
        ),
      ),
    ),
  );
}
