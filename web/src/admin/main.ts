/**
 * The admin dashboard: sign-in (the key from a `#key=` sign-in link or typed once, exchanged for
 * an httpOnly session cookie), the navigation, and a small router over the pages.
 */
import "../style.css";
import "./admin.css";
import { admin } from "./client.js";
import { adaptersPage } from "./pages/adapters.js";
import { experimentPage, experimentsPage } from "./pages/experiments.js";
import { leaderboardPage } from "./pages/leaderboard.js";
import { loopPage } from "./pages/loop.js";
import { overviewPage } from "./pages/overview.js";
import { playgroundPage } from "./pages/playground.js";
import { signInPage } from "./pages/signIn.js";
import { snapshotsPage } from "./pages/snapshots.js";
import { trainingRunPage, trainingRunsPage } from "./pages/trainingRuns.js";
import { votersPage } from "./pages/voters.js";
import { type AdminPage, h, type Route } from "./view.js";

interface RouteDef {
  pattern: RegExp;
  nav?: string;
  page: (route: Route) => AdminPage;
}

const ROUTES: RouteDef[] = [
  { pattern: /^\/admin$/, nav: "Overview", page: () => overviewPage() },
  { pattern: /^\/admin\/leaderboard$/, nav: "Leaderboard", page: (r) => leaderboardPage(r) },
  { pattern: /^\/admin\/experiments$/, nav: "Experiments", page: () => experimentsPage() },
  { pattern: /^\/admin\/experiments\/(?<id>[^/]+)$/, page: (r) => experimentPage(r) },
  { pattern: /^\/admin\/adapters$/, nav: "Adapters", page: () => adaptersPage() },
  { pattern: /^\/admin\/training-runs$/, nav: "Training runs", page: () => trainingRunsPage() },
  { pattern: /^\/admin\/training-runs\/(?<id>[^/]+)$/, page: (r) => trainingRunPage(r) },
  { pattern: /^\/admin\/snapshots$/, nav: "Snapshots", page: () => snapshotsPage() },
  { pattern: /^\/admin\/voters$/, nav: "Voters & quality", page: () => votersPage() },
  { pattern: /^\/admin\/loop$/, nav: "Loop", page: () => loopPage() },
  { pattern: /^\/admin\/playground$/, nav: "Playground", page: () => playgroundPage() },
];
const HREFS: Record<string, string> = {
  Overview: "/admin",
  Leaderboard: "/admin/leaderboard",
  Experiments: "/admin/experiments",
  Adapters: "/admin/adapters",
  "Training runs": "/admin/training-runs",
  Snapshots: "/admin/snapshots",
  "Voters & quality": "/admin/voters",
  Loop: "/admin/loop",
  Playground: "/admin/playground",
};

const main = document.getElementById("main") as HTMLElement;
const nav = document.getElementById("admin-nav") as HTMLElement;
const who = document.getElementById("who") as HTMLElement;
const toggle = document.querySelector<HTMLButtonElement>(".menu-toggle");
document.body.append(
  h("div", { id: "toast", class: "toast", role: "status", "aria-live": "polite", hidden: "" }),
);
let page: AdminPage | null = null;

function buildNav(): void {
  nav.replaceChildren(
    h(
      "ul",
      {},
      ...ROUTES.filter((r) => r.nav).map((r) =>
        h("li", {}, h("a", { href: HREFS[r.nav as string] as string, "data-link": "" }, r.nav as string)),
      ),
      h("li", { class: "nav-foot" }, h("a", { href: "/", class: "out" }, "Voting page ↗")),
    ),
  );
}

function render(focus = false): void {
  page?.unmount();
  const path = location.pathname.replace(/\/$/, "") || "/admin";
  const def = ROUTES.find((r) => r.pattern.test(path));
  const params = (def?.pattern.exec(path)?.groups ?? {}) as Record<string, string>;
  page = def
    ? def.page({ params, query: new URLSearchParams(location.search) })
    : {
        title: "Not found",
        root: h("div", { class: "page admin-page" }, h("h1", {}, "No such page"), h("p", {}, path)),
        mount: async () => {},
        unmount: () => {},
      };
  document.title = `${page.title} — prefloop dashboard`;
  const section = `/${path.split("/").slice(1, 3).join("/")}`;
  for (const a of nav.querySelectorAll<HTMLAnchorElement>("a[data-link]")) {
    if (a.pathname === section) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  main.replaceChildren(page.root);
  if (focus) main.focus({ preventScroll: true });
  void page.mount();
}

document.addEventListener("click", (e) => {
  const a = (e.target as HTMLElement).closest<HTMLAnchorElement>("a[data-link]");
  if (!a || e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0 || a.origin !== location.origin) return;
  e.preventDefault();
  document.body.classList.remove("nav-open");
  toggle?.setAttribute("aria-expanded", "false");
  if (a.pathname + a.search !== location.pathname + location.search)
    history.pushState(null, "", a.pathname + a.search);
  render(true);
});
window.addEventListener("popstate", () => render());
toggle?.addEventListener("click", () => {
  const open = document.body.classList.toggle("nav-open");
  toggle.setAttribute("aria-expanded", String(open));
});

function showSignedIn(expiresAt: string | null, via: string | null): void {
  const out = h("button", { type: "button", class: "btn btn-plain" }, "Sign out");
  out.addEventListener("click", async () => {
    await admin.signOut().catch(() => undefined);
    location.assign("/admin");
  });
  const until = expiresAt
    ? ` until ${new Date(expiresAt).toLocaleTimeString("en-GB", { timeStyle: "short" })}`
    : "";
  who.replaceChildren(h("span", {}, via === "key" ? "Admin (key)" : `Signed in${until}`), out);
}

/** The sign-in form in place of the page; the page comes back once signed in. */
function askToSignIn(problem: string | null): void {
  page?.unmount();
  page = null;
  nav.hidden = true;
  toggle?.setAttribute("hidden", "");
  who.replaceChildren();
  const signIn = signInPage(async (key) => {
    const s = await admin.signIn(key);
    nav.hidden = false;
    toggle?.removeAttribute("hidden");
    showSignedIn(s.expiresAt, s.via);
    render(true);
  }, problem);
  main.replaceChildren(signIn.root);
  void signIn.mount();
}

window.addEventListener("admin:signed-out", () => {
  if (page) askToSignIn("Your session has ended; sign in again.");
});

async function start(): Promise<void> {
  // A sign-in link carries the key in the fragment (never sent to the server or kept in history).
  const fromLink = new URLSearchParams(location.hash.slice(1)).get("key");
  if (fromLink) history.replaceState(null, "", location.pathname + location.search);
  let session = fromLink ? await admin.signIn(fromLink).catch(() => null) : null;
  session ??= await admin.session().catch(() => null);
  if (!session) {
    askToSignIn(fromLink ? "That sign-in link is not valid (any more); paste the admin key instead." : null);
    return;
  }
  showSignedIn(session.expiresAt, session.via);
  render();
}

buildNav();
void start();
