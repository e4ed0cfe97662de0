/**
 * The playground: one prompt and one seed on two models (the base, or an adapter each), rendered
 * through the generation queue and shown side by side as they finish.
 */
import { ApiRequestError, admin } from "../client.js";
import { type AdminPage, h, listIn, note, pageRoot, panel } from "../view.js";

interface Side {
  adapterId: string | null;
  status: string;
  url: string | null;
  error: string | null;
  latencyMs: number | null;
}
interface Run {
  id: string;
  prompt: string;
  seed: number;
  baseModelId: string;
  done: boolean;
  left: Side;
  right: Side;
}
interface AdapterRow {
  id: string;
  status?: string;
  objective?: string | null;
  space?: string | null;
}

const BASE = "";

export function playgroundPage(): AdminPage {
  const prompt = h("textarea", { id: "pg-prompt", rows: "2", maxlength: "2000", required: "" });
  prompt.value = "a red circle on a blue background";
  const models = (id: string) => h("select", { id }, h("option", { value: BASE }, "Base model"));
  const left = models("pg-left");
  const right = models("pg-right");
  const seed = h("input", {
    id: "pg-seed",
    type: "number",
    min: "0",
    max: "4294967295",
    step: "1",
    inputmode: "numeric",
  });
  seed.value = String(Math.floor(Math.random() * 100000));
  const dice = h(
    "button",
    { type: "button", class: "btn btn-plain", "aria-label": "Pick a random seed" },
    "Random",
  );
  dice.addEventListener("click", () => {
    seed.value = String(Math.floor(Math.random() * 100000));
  });
  const go = h("button", { type: "submit", class: "btn btn-primary" }, "Render both");
  const status = h("p", { class: "status", role: "status" });
  const result = h("div", { class: "pg-result", "aria-live": "polite" });
  const form = h(
    "form",
    { class: "pg-form" },
    h("label", { for: "pg-prompt" }, "Prompt"),
    prompt,
    h(
      "div",
      { class: "pg-row" },
      h("div", {}, h("label", { for: "pg-left" }, "Left"), left),
      h("div", {}, h("label", { for: "pg-right" }, "Right"), right),
      h("div", {}, h("label", { for: "pg-seed" }, "Seed"), h("div", { class: "inline" }, seed, dice)),
    ),
    h("div", { class: "inline" }, go, status),
  );
  const root = pageRoot(
    "Playground",
    "Render one prompt with one seed on two models and compare them side by side. Nothing here reaches voters.",
    panel("Compare", form),
    result,
  );
  let alive = true;

  const sideView = (label: string, s: Side, run: Run) =>
    h(
      "figure",
      { class: "pg-side" },
      s.url
        ? h("img", {
            src: s.url,
            alt: `${label}: “${run.prompt}” by ${s.adapterId ?? "the base model"}, seed ${run.seed}`,
            width: "256",
            height: "256",
          })
        : h(
            "div",
            { class: `pg-wait ${s.status}` },
            s.status === "failed" ? `Failed: ${s.error ?? "unknown"}` : `${s.status}…`,
          ),
      h(
        "figcaption",
        {},
        h("strong", {}, s.adapterId ?? "Base model"),
        s.latencyMs != null ? ` · ${(s.latencyMs / 1000).toFixed(1)} s` : "",
      ),
    );

  const show = (run: Run) => {
    result.replaceChildren(
      panel(
        `“${run.prompt}” · seed ${run.seed}`,
        h("div", { class: "pg-pair" }, sideView("Left", run.left, run), sideView("Right", run.right, run)),
      ),
    );
  };

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    go.disabled = true;
    status.textContent = "Queued…";
    try {
      let run = await admin.post<Run>("/api/admin/playground", {
        prompt: prompt.value,
        left: left.value || null,
        right: right.value || null,
        seed: Number(seed.value || 0),
      });
      show(run);
      const started = Date.now();
      while (alive && !run.done && Date.now() - started < 180_000) {
        await new Promise((r) => setTimeout(r, 800));
        run = (await admin.poll<Run>(`/api/admin/playground/${run.id}`)).body;
        show(run);
      }
      status.textContent = run.done ? "Done." : "Still generating; the generator may be busy.";
    } catch (err) {
      status.textContent =
        err instanceof ApiRequestError ? err.message : "The playground is not available on this server.";
    } finally {
      go.disabled = false;
    }
  });

  return {
    title: "Playground",
    root,
    async mount() {
      try {
        const body = await admin.get<unknown>("/api/admin/adapters");
        const adapters = listIn<AdapterRow>(body, "adapters", "items");
        for (const a of adapters) {
          const text = `${a.id}${a.status ? ` (${a.status}${a.objective ? `, ${a.objective}` : ""})` : ""}`;
          left.append(h("option", { value: a.id }, text));
          right.append(h("option", { value: a.id }, text));
        }
        const champion = adapters.find((a) => a.status === "champion");
        if (champion) right.value = champion.id;
      } catch {
        form.append(
          note(
            "unavailable",
            "Adapters are not listed on this server yet: both sides can use the base model.",
          ),
        );
      }
    },
    unmount() {
      alive = false;
    },
  };
}
