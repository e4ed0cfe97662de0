/** The guards' pure parts, as tables: URL checks, text that cannot be stored, origins, unreachable services. */
import { describe, expect, it } from "vitest";
import { isUnavailable } from "../../functions/src/http/errors.js";
import { checkUrl, findUnstorable, unstorableText } from "../../functions/src/http/inputGuard.js";
import { isAllowedOrigin } from "../../functions/src/http/origin.js";

describe("checkUrl", () => {
  it.each([
    ["http://h/api/pairs/next?promptSet=shapes", null],
    ["http://h/api/pairs/next?promptSet=a%20b&experiment=x+y", null],
    ["http://h/api/pairs/caf%C3%A9", null],
    ["http://h/api/pairs/next?q=%F0%9F%98%80", null],
    ["http://h/blobs/%E0%A4%A", "bad_encoding"],
    ["http://h/blobs/%", "bad_encoding"],
    ["http://h/blobs/%zz", "bad_encoding"],
    ["http://h/blobs/%C0%AF", "bad_encoding"],
    ["http://h/blobs/%FF%FE", "bad_encoding"],
    ["http://h/api/pairs/next?promptSet=%ED%A0%80", "bad_encoding"],
    ["http://h/api/pairs/a%00b", "invalid_characters"],
    ["http://h/api/pairs/next?promptSet=%00", "invalid_characters"],
    ["http://h/api/admin/votes?q=x&voterId=%00", "invalid_characters"],
    ["http://h/api/admin/votes?%00=x", "invalid_characters"],
  ])("%s → %s", (url, code) => {
    expect(checkUrl(url)?.code ?? null).toBe(code);
  });
});

describe("text that cannot be stored", () => {
  it.each([
    ["a red circle", null],
    ["😀 e\u0301", null],
    ["a\u0000b", "nul"],
    ["a\ud800b", "lone_surrogate"],
    ["\udfff", "lone_surrogate"],
    ["\ud83d\ude00", null],
  ])("%j → %s", (text, why) => {
    expect(unstorableText(text)).toBe(why);
  });

  it("finds it anywhere in a JSON value, keys included, and says where", () => {
    expect(findUnstorable({ a: [1, "ok", { b: "x\u0000" }] })).toEqual({ where: "body.a[2].b", why: "nul" });
    expect(findUnstorable({ "k\ud800": 1 })).toEqual({ where: "body key", why: "lone_surrogate" });
    expect(findUnstorable({ a: [1, null, true, "ok"] })).toBeNull();
  });
});

describe("isAllowedOrigin", () => {
  const policy = {
    publicUrl: "https://vote.example",
    corsOrigins: ["https://app.example:8443"],
    allowLoopback: false,
  };
  it.each([
    ["https://vote.example", true],
    ["https://vote.example:443", false], // never what a browser sends; refused rather than normalized
    ["http://vote.example", false],
    ["https://vote.example:8443", false],
    ["https://vote.example.evil.example", false],
    ["https://app.example:8443", true],
    ["https://app.example", false],
    ["null", false],
    ["not a url", false],
    ["http://localhost:5173", false],
  ])("%s → %s", (origin, allowed) => {
    expect(isAllowedOrigin(origin, policy)).toBe(allowed);
  });

  it("accepts loopback origins only when asked to (the dev server)", () => {
    expect(isAllowedOrigin("http://localhost:5173", { ...policy, allowLoopback: true })).toBe(true);
    expect(isAllowedOrigin("http://127.0.0.1:5173", { ...policy, allowLoopback: true })).toBe(true);
    expect(isAllowedOrigin("http://10.0.0.1:5173", { ...policy, allowLoopback: true })).toBe(false);
  });
});

describe("isUnavailable", () => {
  const wrapped = (cause: unknown) =>
    Object.assign(new Error("Failed query: insert into votes …"), { cause });
  it.each([
    [wrapped(new Error("Connection terminated unexpectedly")), true],
    [
      wrapped(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" })),
      true,
    ],
    [
      wrapped(
        Object.assign(new Error("terminating connection due to administrator command"), { code: "57P01" }),
      ),
      true,
    ],
    [wrapped(Object.assign(new Error("the database system is starting up"), { code: "57P03" })), true],
    [wrapped(Object.assign(new Error("too many connections"), { code: "53300" })), true],
    [Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }), true],
    [wrapped(Object.assign(new Error("duplicate key value"), { code: "23505" })), false],
    [wrapped(Object.assign(new Error("insert or update violates foreign key"), { code: "23503" })), false],
    [new TypeError("Cannot read properties of undefined"), false],
  ])("%s → %s", (err, expected) => {
    expect(isUnavailable(err)).toBe(expected);
  });
});
