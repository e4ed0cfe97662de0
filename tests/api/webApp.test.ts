import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { webAppRoutes } from "../../functions/src/api/webApp.js";

describe("serving the built web app", () => {
  const outer = mkdtempSync(join(tmpdir(), "prefloop-web-"));
  const dist = join(outer, "dist");
  mkdirSync(join(dist, "assets"), { recursive: true });
  writeFileSync(join(dist, "index.html"), "<!doctype html><title>app</title>");
  writeFileSync(join(dist, "admin.html"), "<!doctype html><title>dashboard</title>");
  writeFileSync(join(dist, "assets/index-abc.js"), "console.log(1)");
  writeFileSync(join(outer, "secret.txt"), "outside the app");
  const app = webAppRoutes(dist);
  afterAll(() => rmSync(outer, { recursive: true, force: true }));

  it.each([
    ["/", 200, "text/html; charset=utf-8", "no-cache"],
    ["/prompt", 200, "text/html; charset=utf-8", "no-cache"],
    ["/prompt/", 200, "text/html; charset=utf-8", "no-cache"],
    ["/assets/index-abc.js", 200, "text/javascript; charset=utf-8", "public, max-age=31536000, immutable"],
    ["/admin", 200, "text/html; charset=utf-8", "no-cache"],
    ["/admin/experiments/exp_1", 200, "text/html; charset=utf-8", "no-cache"],
    ["/administrator", 404, null, null],
    ["/nope", 404, null, null],
    ["/assets/missing.js", 404, null, null],
    ["/api/whatever", 404, null, null],
    ["/..%2Fsecret.txt", 404, null, null],
    ["/%E0%A4%A", 404, null, null],
  ])("GET %s → %d", async (path, status, type, cache) => {
    const res = await app.request(path);
    expect(res.status).toBe(status);
    if (type) expect(res.headers.get("content-type")).toBe(type);
    if (cache) expect(res.headers.get("cache-control")).toBe(cache);
    if (status === 200 && type?.startsWith("text/html")) {
      expect(await res.text()).toContain(path.startsWith("/admin") ? "dashboard" : "<title>app</title>");
    }
  });
});
