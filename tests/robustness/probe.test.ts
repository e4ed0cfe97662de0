/**
 * The holes a black-box probe of the public HTTP API found, one test each: every request here
 * once answered 500 (or worse) and must now answer a clear 4xx in the one error shape, with
 * nothing written and the connection still usable.
 */
import { Agent, request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../functions/src/app.js";
import { ADMIN_KEY, Browser, type Harness, openHarness, seedReadyPairs } from "../api/votingHarness.js";

type Json = { error?: { code: string; message: string } } & Record<string, unknown>;

const count = async (h: Harness, table: string) => {
  const r = (await h.deps.db.orm.execute(sql.raw(`select count(*)::int as n from ${table}`))) as unknown as {
    rows: { n: number }[];
  };
  return r.rows[0]?.n ?? -1;
};

/** Asserts the one error shape with a 4xx status and no stack trace. */
async function expectClientError(res: Response, status?: number): Promise<Json> {
  const text = await res.text();
  expect(res.status, text).toBeGreaterThanOrEqual(400);
  expect(res.status, text).toBeLessThan(500);
  if (status) expect(res.status, text).toBe(status);
  const body = JSON.parse(text) as Json;
  expect(Object.keys(body)).toEqual(["error"]);
  expect(typeof body.error?.code).toBe("string");
  expect(typeof body.error?.message).toBe("string");
  expect(text).not.toMatch(/\bat .*\.(ts|js):\d+|URIError|TypeError|stack/);
  return body;
}

describe("the probe's findings, in process (PGlite)", () => {
  let h: Harness;
  let app: ReturnType<typeof createApp>;
  let setName: string;
  beforeAll(async () => {
    h = await openHarness("pglite");
    app = createApp(h.deps);
    setName = "probe-set";
    await seedReadyPairs(h.deps, 3, { promptSetName: setName });
  });
  afterAll(async () => h?.close());

  it.each(["/blobs/%E0%A4%A", "/blobs/%", "/blobs/%zz", "/blobs/%C0%AF", "/blobs/%FF%FE", "/blobs/a%00b"])(
    "GET %s is a 4xx, not a URIError",
    async (path) => {
      await expectClientError(await app.request(path));
    },
  );

  it("a blob URL still works when it is signed, and a key decoded twice is not served", async () => {
    const url = new URL(await h.deps.blobs.signedUrl("probe/a%b.png".replace("%", "_")));
    await h.deps.blobs.put("probe/a_b.png", new Uint8Array([1, 2, 3]));
    const ok = await app.request(`${url.pathname}${url.search}`);
    expect(ok.status).toBe(200);
    expect(new Uint8Array(await ok.arrayBuffer())).toEqual(new Uint8Array([1, 2, 3]));
    // "%2541" decodes once to "%41" (not a valid key); decoding twice would give "A".
    await expectClientError(await app.request(`/blobs/probe/%2541.png${url.search}`));
  });

  it.each([
    "/api/pairs/next?promptSet=%00",
    "/api/pairs/next?experiment=%00",
    "/api/pairs/a%00b",
    "/api/pairs/next?promptSet=%ZZ",
    "/api/pairs/next?promptSet=%ED%A0%80",
  ])("a voter's GET %s is a 400", async (path) => {
    const b = new Browser(app);
    await b.session();
    const body = await expectClientError(await b.request(path), 400);
    expect(["invalid_characters", "bad_encoding"]).toContain(body.error?.code);
  });

  it.each(["q", "voterId", "pairId", "experimentId", "promptSet", "before", "since", "choice"])(
    "GET /api/admin/votes?%s=%00 is a 400",
    async (filter) => {
      const res = await app.request(`/api/admin/votes?${filter}=%00`, {
        headers: { "x-admin-key": ADMIN_KEY },
      });
      await expectClientError(res, 400);
    },
  );

  it("GET /api/admin/pool?promptSet=%00 is a 400", async () => {
    const res = await app.request("/api/admin/pool?promptSet=%00", { headers: { "x-admin-key": ADMIN_KEY } });
    await expectClientError(res, 400);
  });

  it("a prompt with a lone surrogate is a 400 and leaves no prompt, generation or pair behind", async () => {
    const b = new Browser(app);
    await b.session();
    const before = await Promise.all(["prompts", "generations", "pairs", "jobs"].map((t) => count(h, t)));
    const res = await b.request("/api/prompts", {
      method: "POST",
      headers: { "content-type": "application/json", "x-csrf-token": b.csrf ?? "" },
      body: '{"text":"a red circle \\ud800"}',
    });
    const body = await expectClientError(res, 400);
    expect(body.error?.code).toBe("invalid_characters");
    const nul = await b.post("/api/prompts", { text: "a red\u0000 circle" });
    await expectClientError(nul, 400);
    const after = await Promise.all(["prompts", "generations", "pairs", "jobs"].map((t) => count(h, t)));
    expect(after).toEqual(before);
  });

  it.each([
    ["content", { name: "nul-content", format: "jsonl", content: '{"prompt":"a\\u0000b"}\n' }],
    ["name", { name: "nul\u0000name", format: "jsonl", content: '{"prompt":"ab"}\n' }],
    ["surrogate", { name: "lone", format: "jsonl", content: '{"prompt":"a\\ud800b"}\n' }],
  ])(
    "a prompt-set import with a NUL or lone surrogate in %s is a 400 and writes nothing",
    async (_, body) => {
      const sets = await count(h, "prompt_sets");
      const res = await app.request("/api/admin/prompt-sets", {
        method: "POST",
        headers: { "x-admin-key": ADMIN_KEY, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      await expectClientError(res, 400);
      expect(await count(h, "prompt_sets")).toBe(sets);
    },
  );

  it("refused requests create no voters; a voter row appears only with the first pair served", async () => {
    const limited = await openHarness("pglite", { RATE_LIMIT_IP_PER_MINUTE: "5" });
    try {
      const limitedApp = createApp(limited.deps);
      await seedReadyPairs(limited.deps, 10, { promptSetName: "limited", images: false });
      const statuses: number[] = [];
      for (let i = 0; i < 60; i++) {
        const res = await limitedApp.request(i % 2 ? "/api/session" : "/api/pairs/next?promptSet=limited");
        statuses.push(res.status);
        if (res.status === 429) expect(res.headers.getSetCookie()).toEqual([]);
        await res.arrayBuffer();
      }
      expect(statuses.filter((s) => s !== 429)).toEqual([200, 200, 200, 200, 200]);
      // Three pairs were served (to three new voters); the two sessions stored nothing.
      expect(await count(limited, "voters")).toBe(3);
      const [served] = (
        (await limited.deps.db.orm.execute(
          sql`select count(distinct served_to_voter_id)::int as n from pairs where served_to_voter_id is not null`,
        )) as unknown as { rows: { n: number }[] }
      ).rows;
      expect(served?.n).toBe(3);
    } finally {
      await limited.close();
    }
  });

  it("the shapes import and the top-up route refuse a 40 MB body", async () => {
    const big = "x".repeat(40 * 1024 * 1024);
    for (const path of ["/api/admin/prompt-sets/shapes", "/api/admin/pool/top-up"]) {
      const res = await app.request(path, {
        method: "POST",
        headers: { "x-admin-key": ADMIN_KEY, "content-type": "application/json" },
        body: big,
      });
      expect((await expectClientError(res, 413)).error?.code).toBe("too_large");
    }
  });
});

describe("keep-alive after a 413 (Node server, real sockets)", () => {
  let h: Harness;
  let server: ReturnType<typeof serve>;
  let port: number;
  beforeAll(async () => {
    h = await openHarness("pglite");
    const app = createApp(h.deps);
    server = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 });
    await new Promise<void>((resolve) => server.once("listening", () => resolve()));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await h?.close();
  });

  /** One request on the agent's single socket; resolves with the status and the socket used. */
  const send = (agent: Agent, method: string, path: string, body?: Buffer, chunked = false) =>
    new Promise<{ status: number; socket: object; text: string }>((resolve, reject) => {
      const headers: Record<string, string | number> = { "content-type": "application/json" };
      if (path.startsWith("/api/admin")) headers["x-admin-key"] = ADMIN_KEY;
      if (body && !chunked) headers["content-length"] = body.length;
      const req = httpRequest({ host: "127.0.0.1", port, method, path, agent, headers }, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d) => {
          text += d;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, socket: req.socket as object, text }));
      });
      req.on("error", reject);
      if (body && chunked) {
        for (let i = 0; i < body.length; i += 64 * 1024) req.write(body.subarray(i, i + 64 * 1024));
        req.end();
      } else req.end(body);
    });

  it.each([
    ["2 MB vote", "/api/votes", 2 * 1024 * 1024, false],
    ["2 MB vote, chunked", "/api/votes", 2 * 1024 * 1024, true],
    ["40 MB shapes import", "/api/admin/prompt-sets/shapes", 40 * 1024 * 1024, false],
    ["40 MB top-up, chunked", "/api/admin/pool/top-up", 40 * 1024 * 1024, true],
  ])("a %s answers 413 and the same connection serves the next request", async (_, path, size, chunked) => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const refused = await send(
        agent,
        "POST",
        path as string,
        Buffer.alloc(size as number, 0x61),
        chunked as boolean,
      );
      expect(refused.status).toBe(413);
      expect(JSON.parse(refused.text).error.code).toBe("too_large");
      const next = await send(agent, "GET", "/healthz");
      expect(next.status).toBe(200);
      expect(next.socket).toBe(refused.socket);
    } finally {
      agent.destroy();
    }
  });
});
