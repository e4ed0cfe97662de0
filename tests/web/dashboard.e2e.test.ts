/**
 * The admin dashboard in real headless Chromium against the real server on loopback, on a
 * platform seeded with adapters, snapshots, training runs, loop rounds, an experiment and votes
 * cast through the HTTP API: the sign-in link lands on the dashboard with an httpOnly session,
 * every page renders at desktop and phone width (screenshots in test-artifacts/), tables sort by
 * keyboard, and the playground renders through the generation queue.
 */
import { join } from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../functions/src/app.js";
import { repoRoot } from "../../functions/src/config.js";
import { ADMIN_KEY, type Harness, openHarness, runFakeGenerator } from "../api/votingHarness.js";
import {
  artifactsDir,
  chromiumPath,
  distDir,
  ensureWebBuilt,
  freePort,
  launchChromium,
  startServer,
} from "./browserHarness.js";
import { type SeededPlatform, seedPlatform } from "./dashboardSeed.js";

const existsChromium = await import("node:fs").then((fs) => fs.existsSync(chromiumPath));

const DESKTOP = { width: 1366, height: 900 };
const axeSource = join(repoRoot, "node_modules/axe-core/axe.min.js");

/** Serious and critical WCAG 2 A/AA problems axe-core finds on the page, one line each. */
async function accessibilityProblems(page: Page): Promise<string[]> {
  await page.addScriptTag({ path: axeSource });
  return page.evaluate(async () => {
    const axe = (
      window as unknown as {
        axe: {
          run(
            o: unknown,
          ): Promise<{ violations: { id: string; impact: string; nodes: { target: string[] }[] }[] }>;
        };
      }
    ).axe;
    const r = await axe.run({ runOnly: { type: "tag", values: ["wcag2a", "wcag2aa"] } });
    return r.violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map(
        (v) =>
          `${v.id}: ${v.nodes
            .slice(0, 3)
            .map((n) => n.target.join(" "))
            .join(", ")}`,
      );
  });
}
const PHONE = { width: 390, height: 844 };

describe.skipIf(!existsChromium)("admin dashboard in headless Chromium", () => {
  let browser: Browser;
  let h: Harness;
  let url: string;
  let stop: () => Promise<void>;
  let seeded: SeededPlatform;
  let desktop: BrowserContext;
  let phone: BrowserContext;
  const errors: string[] = [];

  beforeAll(async () => {
    await ensureWebBuilt();
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    h = await openHarness("pglite", {
      PORT: String(port),
      PUBLIC_URL: url,
      WEB_DIST_DIR: distDir,
      RATE_LIMIT_VOTER_PER_MINUTE: "100000",
      RATE_LIMIT_IP_PER_MINUTE: "100000",
      POOL_DEPTH: "2",
    });
    seeded = await seedPlatform(h.deps, createApp(h.deps));
    stop = await startServer(h.deps, port);
    browser = await launchChromium();
    const signIn = async (viewport: { width: number; height: number }) => {
      const context = await browser.newContext({ viewport, deviceScaleFactor: viewport === PHONE ? 2 : 1 });
      const page = await context.newPage();
      page.on("pageerror", (e) => errors.push(String(e)));
      await page.goto(`${url}/admin#key=${encodeURIComponent(ADMIN_KEY)}`);
      await page.getByRole("heading", { level: 1, name: "Overview" }).waitFor();
      await page.close();
      return context;
    };
    desktop = await signIn(DESKTOP);
    phone = await signIn(PHONE);
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await stop?.();
    await h?.close();
  });

  const open = async (context: BrowserContext, path: string): Promise<Page> => {
    const page = await context.newPage();
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(`${url}${path}`);
    await page.locator("h1").first().waitFor();
    await page.waitForFunction(() => document.querySelectorAll(".note-loading").length === 0, null, {
      timeout: 15_000,
    });
    return page;
  };

  const shoot = async (name: string, path: string, check: (page: Page) => Promise<void>) => {
    for (const [context, suffix] of [
      [desktop, "desktop"],
      [phone, "phone"],
    ] as const) {
      const page = await open(context, path);
      await check(page);
      expect(await page.locator(".note-error").count()).toBe(0);
      // the phone layout shows the same elements, hidden or folded: checked once, at desktop width
      if (suffix === "desktop") expect(await accessibilityProblems(page)).toEqual([]);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(overflow).toBeLessThanOrEqual(1); // nothing wider than the screen: wide tables scroll in their region
      await page.screenshot({ path: join(artifactsDir, `dashboard-${name}-${suffix}.png`), fullPage: true });
      await page.close();
    }
  };

  it("the sign-in link lands on the dashboard with an httpOnly session cookie and no key in the address", async () => {
    const cookies = await desktop.cookies(`${url}/api/admin/session`);
    const session = cookies.find((c) => c.name === "prefloop_admin");
    expect(session).toMatchObject({ httpOnly: true, sameSite: "Strict", path: "/api/admin" });
    const page = await open(desktop, "/admin");
    expect(page.url()).toBe(`${url}/admin`);
    expect(await page.evaluate(() => document.cookie)).not.toContain("prefloop_admin");
    await expect.poll(() => page.locator(".fact").first().textContent()).toMatch(/Ready to vote on/);
    await page.close();
    // without the cookie: the sign-in form; a wrong key is refused in words
    const fresh = await browser.newContext({ viewport: DESKTOP });
    const anon = await fresh.newPage();
    await anon.goto(`${url}/admin/experiments`);
    await anon.getByLabel("Admin key").fill("not the key");
    await anon.getByRole("button", { name: "Sign in" }).click();
    await expect.poll(() => anon.getByRole("alert").textContent()).toMatch(/not the admin key/);
    await anon.screenshot({ path: join(artifactsDir, "dashboard-sign-in-desktop.png") });
    expect(await accessibilityProblems(anon)).toEqual([]);
    await anon.getByLabel("Admin key").fill(ADMIN_KEY);
    await anon.getByRole("button", { name: "Sign in" }).click();
    await anon.getByRole("heading", { level: 1, name: "Experiments" }).waitFor();
    // a session that ends (expired, or signed out in another tab) brings the form back, in words
    await fresh.clearCookies();
    await anon.getByRole("navigation", { name: "Dashboard" }).getByRole("link", { name: "Adapters" }).click();
    await anon.getByRole("heading", { level: 1, name: "Sign in to the dashboard" }).waitFor();
    expect(await anon.getByRole("alert").textContent()).toMatch(/session has ended/);
    await anon.getByLabel("Admin key").fill(ADMIN_KEY);
    await anon.getByRole("button", { name: "Sign in" }).click();
    await anon.getByRole("heading", { level: 1, name: "Adapters" }).waitFor();
    // signing out clears the cookie
    await anon.getByRole("button", { name: "Sign out" }).click();
    await anon.getByRole("heading", { level: 1, name: "Sign in to the dashboard" }).waitFor();
    expect(
      (await fresh.cookies(`${url}/api/admin/session`)).find((c) => c.name === "prefloop_admin"),
    ).toBeUndefined();
    await fresh.close();
  });

  it("overview: pool, newest votes, prompt sets", async () => {
    await shoot("overview", "/admin", async (page) => {
      await expect
        .poll(() => page.locator("section", { hasText: "Newest votes" }).locator("tbody tr").count())
        .toBe(8);
      expect(await page.locator("section", { hasText: "Prompt sets" }).textContent()).toContain("round3-cpo");
    });
  });

  it("experiment: win rate with its band, decision state, SRM, guardrails, categories, sample votes", async () => {
    await shoot("experiments", "/admin/experiments", async (page) => {
      const row = page.locator("tbody tr").first();
      expect(await row.textContent()).toContain("round 3");
      expect(await row.textContent()).toContain(String(seeded.votes));
    });
    await shoot("experiment", `/admin/experiments/${seeded.experimentId}`, async (page) => {
      await page.locator("figure.chart svg").first().waitFor();
      expect(await page.locator("figure.chart").count()).toBeGreaterThanOrEqual(2);
      const text = (await page.locator("main").textContent()) ?? "";
      for (const words of [
        "cpo-ncp vs control",
        "sft-latent vs control",
        "Sample-ratio checks",
        "Guardrails",
        "By category",
        "left/right placement",
      ])
        expect(text).toContain(words);
      // twelve voted pairs, each with both images loaded and the chosen side (if any) outlined
      const samples = page.locator("li.sample");
      await expect.poll(() => samples.count()).toBe(12);
      await page.waitForFunction(() =>
        [...document.querySelectorAll<HTMLImageElement>("li.sample img")].every(
          (i) => i.complete && i.naturalWidth > 0,
        ),
      );
      expect(await page.locator("li.sample img").count()).toBe(24);
      const lefts = await page.locator("li.sample .badge-left").count();
      const rights = await page.locator("li.sample .badge-right").count();
      expect(await page.locator("li.sample figure.chosen").count()).toBe(lefts + rights);
    });
  });

  it("adapters (lineage), training runs (progress, curves), snapshots, voters (flags), loop, leaderboard", async () => {
    await shoot("adapters", "/admin/adapters", async (page) => {
      expect(await page.locator(".tree .node").count()).toBe(5); // the base and four adapters
      const champion = page.locator(".tree .node-champion");
      expect(await champion.textContent()).toContain("ad_r2_dpo");
      // the champion sits two levels under the base: base → ad_r1_dpo → ad_r2_dpo
      expect(
        await champion.evaluate((n) => n.closest("ul ul")?.parentElement?.querySelector("code")?.textContent),
      ).toBe("ad_r1_dpo");
      for (const id of ["ad_r1_dpo", "ad_r2_dpo", "ad_r3_cpo", "ad_r3_sft"])
        expect(await page.locator("tbody").textContent()).toContain(id);
    });
    await shoot("training-runs", "/admin/training-runs", async (page) => {
      expect(await page.locator("tbody tr").count()).toBe(5);
    });
    await shoot("training-run", `/admin/training-runs/${seeded.runningRunId}`, async (page) => {
      expect(await page.locator("figure.chart").count()).toBe(2);
      expect(await page.locator("progress").first().getAttribute("value")).toBe("0.6");
    });
    await shoot("snapshots", "/admin/snapshots", async (page) => {
      expect(await page.locator("tbody tr").count()).toBe(3);
    });
    await shoot("voters", "/admin/voters", async (page) => {
      expect(await page.locator("tbody tr").count()).toBeGreaterThanOrEqual(7);
      // the fast, one-sided voter is flagged with a reason
      expect(await page.locator("ul.flags li").count()).toBeGreaterThanOrEqual(1);
    });
    await shoot("loop", "/admin/loop", async (page) => {
      const story = (await page.locator(".story").textContent()) ?? "";
      expect(story).toContain("A/B-testing on live traffic: round 3");
      const now = (await page.locator("section", { hasText: "Now and next" }).textContent()) ?? "";
      expect(now).toContain("ad_r2_dpo"); // the champion
      expect(now).toContain("cpo-ncp"); // the running experiment's challengers, with their intervals now
      expect(await page.locator("section", { hasText: "Rounds" }).locator("tbody tr").count()).toBe(3);
    });
    await shoot("leaderboard", "/admin/leaderboard", async (page) => {
      // the three models the experiment's votes compare, each with its interval
      expect(await page.locator("figure.chart").count()).toBe(1);
      const table = (await page.locator("section", { hasText: "Ranking" }).textContent()) ?? "";
      for (const id of ["ad_r2_dpo", "ad_r3_cpo", "ad_r3_sft"]) expect(table).toContain(id);
    });
  });

  it("a page whose API this server lacks says so instead of breaking", async () => {
    const page = await desktop.newPage();
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.route("**/api/admin/adapters*", (route) =>
      route.fulfill({
        status: 404,
        contentType: "application/json",
        body: JSON.stringify({
          error: { code: "not_found", message: "No route for GET /api/admin/adapters." },
        }),
      }),
    );
    await page.goto(`${url}/admin/adapters`);
    await page.locator(".note-unavailable").waitFor();
    expect(await page.locator(".note-unavailable").textContent()).toBe(
      "Not available on this server yet: adapters.",
    );
    expect(await page.locator(".note-error").count()).toBe(0);
    await page.close();
  });

  it("sorts tables by keyboard and moves between pages from the menu at phone width", async () => {
    const page = await open(phone, "/admin");
    const header = page.locator("section", { hasText: "Prompt sets" }).locator("th").nth(0);
    await header.locator("button").focus();
    await page.keyboard.press("Enter");
    expect(await header.getAttribute("aria-sort")).toBe("ascending");
    await page.keyboard.press("Enter");
    expect(await header.getAttribute("aria-sort")).toBe("descending");
    const menu = page.getByRole("button", { name: "Menu" });
    expect(await menu.getAttribute("aria-expanded")).toBe("false");
    await menu.click();
    expect(await menu.getAttribute("aria-expanded")).toBe("true");
    await page
      .getByRole("navigation", { name: "Dashboard" })
      .getByRole("link", { name: "Playground" })
      .focus();
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { level: 1, name: "Playground" }).waitFor();
    expect(new URL(page.url()).pathname).toBe("/admin/playground");
    await page.close();
  });

  it("playground: one prompt and seed on the base and the champion, side by side", async () => {
    for (const [context, suffix] of [
      [desktop, "desktop"],
      [phone, "phone"],
    ] as const) {
      const page = await open(context, "/admin/playground");
      await page.getByLabel("Prompt").fill("a blue triangle on a yellow background");
      await page.getByLabel("Seed", { exact: true }).fill("42");
      const right = page.getByLabel("Right");
      expect(await right.inputValue()).toBe(seeded.champion); // the champion is preselected
      await right.selectOption(seeded.champion);
      await page.getByRole("button", { name: "Render both" }).click();
      await expect.poll(() => page.locator(".pg-side").count()).toBe(2);
      await expect
        .poll(async () => runFakeGenerator(h.deps).then(() => page.locator(".pg-side img").count()), {
          timeout: 15_000,
        })
        .toBe(2);
      await page.waitForFunction(() =>
        [...document.querySelectorAll<HTMLImageElement>(".pg-side img")].every(
          (i) => i.complete && i.naturalWidth > 0,
        ),
      );
      expect(await page.locator(".pg-side img").first().getAttribute("alt")).toContain("seed 42");
      expect(await page.locator(".pg-side figcaption").nth(1).textContent()).toContain(seeded.champion);
      await page.screenshot({
        path: join(artifactsDir, `dashboard-playground-${suffix}.png`),
        fullPage: true,
      });
      await page.close();
    }
  });

  it("actions from the browser (session cookie + CSRF token): exclude and include a voter, a refused promotion in words, retire an adapter, stop the experiment", async () => {
    const page = await open(desktop, "/admin/voters");
    page.on("dialog", (d) => void d.accept());
    const row = page
      .locator("tbody tr")
      .filter({ has: page.getByRole("button", { name: "Exclude" }) })
      .first();
    const voterCell = (await row.locator("td").first().textContent()) ?? "";
    await row.getByRole("button", { name: "Exclude" }).click();
    await expect.poll(() => page.locator("#toast").textContent()).toMatch(/is excluded/);
    const excluded = page.locator("tbody tr", { hasText: voterCell.replace("…", "") });
    await expect.poll(() => excluded.locator(".badge").first().textContent()).toBe("excluded");
    await excluded.getByRole("button", { name: "Include" }).click();
    await expect.poll(() => excluded.locator(".badge").first().textContent()).toBe("included");

    await page.goto(`${url}/admin/adapters`);
    const sft = page.locator("tbody tr", { hasText: "ad_r3_sft" });
    // the seeded adapters have no files: the server refuses to promote, and the page says why
    await sft.getByRole("button", { name: "Promote" }).click();
    await expect.poll(() => page.locator("#toast.toast-error").textContent()).toMatch(/files are missing/);
    expect(await page.locator(".tree .node-champion code").textContent()).toBe("ad_r2_dpo");
    await sft.getByRole("button", { name: "Retire" }).click();
    await expect.poll(() => sft.locator(".badge").first().textContent()).toBe("retired");

    await page.goto(`${url}/admin/experiments/${seeded.experimentId}`);
    await page.getByRole("button", { name: "Stop" }).click();
    await expect.poll(() => page.locator(".exp-name .badge").textContent()).toBe("stopped");
    await page.close();
    expect(errors).toEqual([]);
  });
});
