/**
 * Property tests of every endpoint: each route of /openapi.json (and the routes outside it) gets
 * PREFLOOP_PROPERTY_RUNS (default 100) requests of hostile input: random and wrongly typed bodies,
 * huge strings, NULs, lone surrogates, broken percent-encoding, missing and extra fields, odd
 * query and path parameters, with no credentials, a voter's or an admin's. For every request:
 * no 500 and no undesigned 5xx, the one error shape on every refusal, no stack trace in any
 * answer, and no row written by a refused request. In process (`app.request`) on PGlite.
 *
 * Larger runs and their results are in RELIABILITY.md, e.g. 10,000 cases per voter endpoint:
 *   PREFLOOP_PROPERTY_RUNS=10000 PREFLOOP_PROPERTY_ROUTES='^(GET|POST) /api/(session|pairs|votes|prompts)' \
 *     npx vitest run tests/robustness/endpoints.property.test.ts
 */
import { sql } from "drizzle-orm";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../functions/src/app.js";
import { ADMIN_KEY, Browser, type Harness, openHarness, seedReadyPairs } from "../api/votingHarness.js";
import { contentType, hostileBody, hostileString, wireValue } from "./arbitraries.js";

const RUNS = Number(process.env.PREFLOOP_PROPERTY_RUNS ?? 100);
/** Only the routes whose `METHOD /path` matches this regular expression (all by default). */
const ONLY = new RegExp(process.env.PREFLOOP_PROPERTY_ROUTES ?? "");
const SEED = process.env.PREFLOOP_PROPERTY_SEED ? Number(process.env.PREFLOOP_PROPERTY_SEED) : undefined;

/** 5xx answers the API documents (with a code and Retry-After), as opposed to failures. */
const DESIGNED_5XX = new Set(["no_model", "pool_empty", "unavailable", "generation_failed"]);
const STACK =
  /\n\s+at |\bat [\w.<>]+ \(|node_modules|\.ts:\d+|\.js:\d+:\d+|URIError|TypeError|ReferenceError/;

interface Route {
  method: string;
  template: string;
  query: string[];
  fields: string[];
}

type Auth = "none" | "voter" | "admin" | "wrong-admin";

interface Case {
  method: string;
  url: string;
  auth: Auth;
  contentType: string;
  body: string | undefined;
  origin: string | undefined;
}

function routesOf(doc: {
  paths: Record<
    string,
    Record<string, { parameters?: { in: string; name: string }[]; requestBody?: unknown }>
  >;
  components?: { schemas?: Record<string, { properties?: Record<string, unknown> }> };
}): Route[] {
  const out: Route[] = [];
  for (const [template, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const body = (
        op.requestBody as { content?: Record<string, { schema?: { $ref?: string; properties?: object } }> }
      )?.content?.["application/json"]?.schema;
      const schema = body?.$ref ? doc.components?.schemas?.[body.$ref.split("/").pop() as string] : body;
      out.push({
        method: method.toUpperCase(),
        template,
        query: (op.parameters ?? []).filter((p) => p.in === "query").map((p) => p.name),
        fields: Object.keys(schema?.properties ?? {}),
      });
    }
  }
  return out;
}

describe("every endpoint under hostile input (fast-check, PGlite)", () => {
  let h: Harness;
  let app: ReturnType<typeof createApp>;
  let voter: Browser;
  let routes: Route[];
  let known: string[];
  let countRows: () => Promise<number>;
  let walPosition: () => Promise<string>;
  let rows = 0;
  let wal = "";

  beforeAll(async () => {
    h = await openHarness("pglite", {
      RATE_LIMIT_VOTER_PER_MINUTE: "100000000",
      RATE_LIMIT_IP_PER_MINUTE: "100000000",
      RATE_LIMIT_PROMPTS_PER_HOUR: "100000000",
      LOOP_ENABLED: "false",
    });
    app = createApp(h.deps);
    const { pairIds, promptSetId } = await seedReadyPairs(h.deps, 20, { promptSetName: "fuzz" });
    voter = new Browser(app);
    await voter.session();
    const served = (await (await voter.request("/api/pairs/next?promptSet=fuzz")).json()) as {
      voteToken?: string;
    };
    known = [
      ...pairIds.slice(0, 3),
      promptSetId,
      "fuzz",
      "shapes",
      served.voteToken ?? "",
      "left",
      "true",
      "10",
    ];
    const doc = await (await app.request("/openapi.json")).json();
    routes = routesOf(doc).filter((r) => ONLY.test(`${r.method} ${r.template}`));
    const tables = (
      (await h.deps.db.orm.execute(
        sql`select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE'`,
      )) as unknown as { rows: { table_name: string }[] }
    ).rows.map((r) => r.table_name);
    const total = sql.raw(`select ${tables.map((t) => `(select count(*) from "${t}")`).join(" + ")} as n`);
    countRows = async () =>
      Number(
        ((await h.deps.db.orm.execute(total)) as unknown as { rows: { n: number | string }[] }).rows[0]?.n,
      );
    walPosition = async () =>
      String(
        (
          (await h.deps.db.orm.execute(sql`select pg_current_wal_lsn()::text as l`)) as unknown as {
            rows: { l: string }[];
          }
        ).rows[0]?.l,
      );
    rows = await countRows();
    wal = await walPosition();
  });

  /**
   * Rows written since the last call. Nothing can have been written while the WAL position stands
   * still, so the tables are counted only when it moved.
   */
  const rowsWritten = async (): Promise<number> => {
    const now = await walPosition();
    if (now === wal) return 0;
    wal = now;
    const after = await countRows();
    const written = after - rows;
    rows = after;
    return written;
  };
  afterAll(async () => h?.close());

  const caseOf = (route: Route): fc.Arbitrary<Case> => {
    const params = route.template.match(/\{[^}]+\}/g) ?? [];
    const path =
      params.length === 0
        ? fc.constant(route.template)
        : fc
            .tuple(...params.map(() => wireValue(known)))
            .map((values) => params.reduce((p, name, i) => p.replace(name, values[i] ?? ""), route.template));
    const query = fc
      .tuple(fc.subarray(route.query), fc.array(fc.tuple(wireValue(), wireValue()), { maxLength: 2 }))
      .chain(([names, extra]) =>
        fc
          .tuple(...names.map(() => wireValue(known)))
          .map((values) =>
            [...names.map((n, i) => `${n}=${values[i]}`), ...extra.map(([k, v]) => `${k}=${v}`)].join("&"),
          ),
      );
    const hasBody = route.method !== "GET" && route.method !== "DELETE";
    return fc.record({
      method: fc.oneof(
        { weight: 9, arbitrary: fc.constant(route.method) },
        fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH"),
      ),
      url: fc.tuple(path, query).map(([p, q]) => (q ? `${p}?${q}` : p)),
      auth: fc.constantFrom<Auth>("none", "voter", "voter", "admin", "admin", "wrong-admin"),
      contentType,
      body: hasBody ? hostileBody(route.fields, known) : fc.constant(undefined),
      origin: fc.option(fc.constantFrom(h.deps.config.publicUrl, "https://evil.example", "null"), {
        nil: undefined,
      }),
    });
  };

  const send = async (c: Case): Promise<Response> => {
    const headers: Record<string, string> = {};
    if (c.contentType) headers["content-type"] = c.contentType;
    if (c.origin) headers.origin = c.origin;
    if (c.auth === "admin") headers["x-admin-key"] = ADMIN_KEY;
    if (c.auth === "wrong-admin") headers["x-admin-key"] = `${ADMIN_KEY}x`;
    const canHaveBody = c.method !== "GET" && c.method !== "HEAD";
    const init: RequestInit = {
      method: c.method,
      headers,
      ...(canHaveBody && c.body !== undefined ? { body: c.body } : {}),
    };
    if (c.auth === "voter") {
      if (voter.csrf) headers["x-csrf-token"] = voter.csrf;
      return voter.request(c.url, init);
    }
    return app.request(c.url, init);
  };

  /** Checks one answer; returns a description of what is wrong, or null. */
  const check = async (_c: Case, res: Response): Promise<string | null> => {
    const text = await res.text();
    const wrote = await rowsWritten();
    if (STACK.test(text)) return `stack trace or internals in the answer: ${text.slice(0, 300)}`;
    if (res.status < 400) return null;
    let body: { error?: { code?: unknown; message?: unknown } };
    try {
      body = JSON.parse(text);
    } catch {
      return `${res.status} without a JSON body: ${text.slice(0, 200)}`;
    }
    const keys = Object.keys(body);
    if (
      keys.length !== 1 ||
      keys[0] !== "error" ||
      typeof body.error?.code !== "string" ||
      typeof body.error?.message !== "string"
    ) {
      return `${res.status} not in the one error shape: ${text.slice(0, 200)}`;
    }
    if (res.status >= 500 && !DESIGNED_5XX.has(body.error.code)) return `${res.status} ${text.slice(0, 300)}`;
    if (wrote !== 0) return `${res.status} ${body.error.code} yet ${wrote} row(s) written`;
    return null;
  };

  it("finds the routes to test in /openapi.json", () => {
    if (process.env.PREFLOOP_PROPERTY_ROUTES) {
      expect(routes.length).toBeGreaterThan(0);
      return;
    }
    expect(routes.length).toBeGreaterThanOrEqual(20);
    expect(routes.map((r) => `${r.method} ${r.template}`)).toEqual(
      expect.arrayContaining(["POST /api/votes", "GET /api/pairs/next", "POST /api/admin/prompt-sets"]),
    );
  });

  // A case takes a few milliseconds; the limits leave room for a loaded machine.
  it("every documented route: no 500, one error shape, no stack trace, nothing written on a refusal", {
    timeout: 60_000 + RUNS * 3_000,
  }, async () => {
    const failures: string[] = [];
    let cases = 0;
    const started = Date.now();
    for (const route of routes) {
      const before = cases;
      try {
        await fc.assert(
          fc.asyncProperty(caseOf(route), async (c) => {
            cases++;
            const problem = await check(c, await send(c));
            if (problem) throw new Error(`${c.method} ${c.url.slice(0, 200)} (${c.auth}): ${problem}`);
          }),
          { numRuns: RUNS, seed: SEED, endOnFailure: true },
        );
      } catch (err) {
        failures.push(
          `${route.method} ${route.template}: ${String((err as Error).message)
            .split("\n")
            .slice(0, 6)
            .join(" | ")}`,
        );
      }
      if (process.env.PREFLOOP_PROPERTY_PROGRESS) {
        const s = Math.round((Date.now() - started) / 1000);
        console.info(
          `${route.method} ${route.template}: ${cases - before} cases, ${failures.length} failing routes, ${s} s`,
        );
      }
    }
    console.info(`endpoint properties: ${routes.length} routes × ${RUNS} runs = ${cases} cases`);
    expect(failures).toEqual([]);
  });

  it("the routes outside the API document (blobs, health, any path) hold too", {
    timeout: 60_000 + RUNS * 1_000,
  }, async () => {
    const failures: string[] = [];
    const other = fc.record({
      method: fc.constantFrom("GET", "GET", "POST", "HEAD"),
      url: fc.oneof(
        wireValue().map((v) => `/blobs/${v}?exp=${Date.now()}&sig=x`),
        fc.array(wireValue(), { minLength: 1, maxLength: 4 }).map((p) => `/blobs/${p.join("/")}`),
        fc
          .constantFrom("/healthz", "/readyz", "/openapi.json")
          .chain((p) => wireValue().map((v) => `${p}?${v}`)),
        fc.array(wireValue(), { minLength: 1, maxLength: 4 }).map((p) => `/${p.join("/")}`),
      ),
      auth: fc.constantFrom<Auth>("none", "voter"),
      contentType,
      body: fc.option(hostileString(), { nil: undefined }),
      origin: fc.constant(undefined),
    });
    await fc
      .assert(
        fc.asyncProperty(other, async (c) => {
          const res = await send(c);
          if (c.method === "HEAD") return;
          const problem = await check(c, res);
          if (problem) throw new Error(`${c.method} ${c.url.slice(0, 200)}: ${problem}`);
        }),
        { numRuns: RUNS * 4, seed: SEED, endOnFailure: true },
      )
      .catch((err: Error) => failures.push(err.message.split("\n").slice(0, 6).join(" | ")));
    expect(failures).toEqual([]);
  });
});
