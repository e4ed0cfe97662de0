/**
 * Serves the built web app (web/dist) from the Node server: files by path, `index.html` for
 * the app's client-side routes. Hashed assets are cached for a year, the HTML never. (In AWS the same
 * files are served from S3 behind CloudFront.)
 */
import { readFile, stat } from "node:fs/promises";
import { extname, join, normalize, resolve, sep } from "node:path";
import { Hono } from "hono";

const types: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json",
  ".webmanifest": "application/manifest+json",
  ".woff2": "font/woff2",
  ".txt": "text/plain; charset=utf-8",
};

/** The web app's own (client-side) routes; every other unknown path stays a JSON 404. */
export const WEB_ROUTES = ["/", "/prompt"];

/** The admin dashboard (`admin.html`) owns `/admin` and every client-side route under it. */
const isAdminRoute = (path: string) => path === "/admin" || path.startsWith("/admin/");

export function webAppRoutes(distDir: string): Hono {
  const root = resolve(distDir);
  const app = new Hono();
  app.get("*", async (c, next) => {
    let path: string;
    try {
      path = decodeURIComponent(c.req.path);
    } catch {
      return next(); // malformed escapes: not one of our files
    }
    if (path.startsWith("/api/") || path.startsWith("/blobs/")) return next();
    const file = normalize(join(root, path));
    if (file !== root && !file.startsWith(root + sep)) return next();
    let target = file;
    const isFile = await stat(file).then(
      (s) => s.isFile(),
      () => false,
    );
    if (!isFile) {
      const route = path.replace(/\/$/, "") || "/";
      if (isAdminRoute(route)) target = join(root, "admin.html");
      else if (WEB_ROUTES.includes(route)) target = join(root, "index.html");
      else return next();
    }
    const body = await readFile(target).catch(() => null);
    if (!body) return next();
    const ext = extname(target);
    return c.body(new Uint8Array(body), 200, {
      "content-type": types[ext] ?? "application/octet-stream",
      "cache-control": path.startsWith("/assets/") ? "public, max-age=31536000, immutable" : "no-cache",
    });
  });
  return app;
}
