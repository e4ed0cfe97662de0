/** The web app: a tiny router over two pages, sharing one voter session. */
import "./style.css";
import { ApiRequestError, api } from "./api.js";
import { promptPage } from "./promptPage.js";
import { h, type Page, setCount, wait } from "./ui.js";
import { votePage } from "./votePage.js";

const main = document.getElementById("main") as HTMLElement;
let page: Page | null = null;
let promptMaxChars = 300;

function render(): void {
  page?.unmount();
  const url = new URL(location.href);
  const params = { promptSet: url.searchParams.get("promptSet") ?? undefined };
  const name = url.pathname.replace(/\/$/, "") === "/prompt" ? "prompt" : "vote";
  page = name === "prompt" ? promptPage(promptMaxChars) : votePage(params);
  document.title = `prefloop — ${page.title}`;
  for (const a of document.querySelectorAll<HTMLAnchorElement>("nav a")) {
    if (a.dataset.page === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  main.replaceChildren(page.root);
  void page.mount();
}

document.addEventListener("click", (e) => {
  const a = (e.target as HTMLElement).closest<HTMLAnchorElement>("a[data-link]");
  if (!a || e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
  e.preventDefault();
  if (a.pathname !== location.pathname) history.pushState(null, "", a.pathname);
  render();
});
window.addEventListener("popstate", render);

async function start(): Promise<void> {
  for (;;) {
    try {
      const s = await api.session();
      setCount(s.voterVotes);
      promptMaxChars = s.promptMaxChars;
      break;
    } catch (err) {
      const s = err instanceof ApiRequestError ? (err.retryAfterSeconds ?? 3) : 3;
      main.replaceChildren(
        h("p", { class: "status" }, `Cannot start a voting session yet; retrying in ${s} s…`),
      );
      await wait(s * 1000);
    }
  }
  render();
}

void start();
