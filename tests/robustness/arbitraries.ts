/**
 * fast-check generators of hostile HTTP input: strings with NULs, lone surrogates, control and
 * bidi characters, huge and empty values; paths and queries with broken percent-encoding; JSON
 * bodies of the wrong shape, type and size; odd content types. Known ids from the seeded
 * database are mixed in so that some cases get past "not found" into the handlers.
 */
import fc from "fast-check";

const nasty = [
  "",
  " ",
  "\u0000",
  "a\u0000b",
  "\ud800",
  "x\udfffy",
  "\ud83d",
  "😀",
  "\u202e\u2066",
  "\uFEFF",
  "\r\n",
  "%",
  "%00",
  "%zz",
  "../../etc/passwd",
  "..",
  "' or 1=1 --",
  "<script>alert(1)</script>",
  `${"$"}{jndi:ldap://x}`,
  "null",
  "true",
  "-1",
  "1e309",
  "NaN",
  "0x10",
  "9".repeat(40),
  "\u0085\u2028\u2029",
  "ＡＢＣ",
  "e\u0301",
];

/** Any string a client could send, biased to the ones that break things. */
export function hostileString(known: readonly string[] = []): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.string({ maxLength: 40 }) },
    { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
    // UTF-16 units one by one: lone surrogates included.
    {
      weight: 2,
      arbitrary: fc
        .array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 12 })
        .map((u) => String.fromCharCode(...u)),
    },
    { weight: 3, arbitrary: fc.constantFrom(...nasty) },
    { weight: 1, arbitrary: fc.integer({ min: 1_000, max: 70_000 }).map((n) => "x".repeat(n)) },
    ...(known.length ? [{ weight: 3, arbitrary: fc.constantFrom(...known) }] : []),
  );
}

/** `s` percent-encoded so that lone surrogates survive as invalid UTF-8 escapes (as a raw client would send). */
export function encodeAny(s: string): string {
  let out = "";
  for (const ch of s) {
    const cp = ch.codePointAt(0) as number;
    if (cp >= 0xd800 && cp <= 0xdfff) {
      out +=
        `%${(0xe0 | (cp >> 12)).toString(16)}%${(0x80 | ((cp >> 6) & 0x3f)).toString(16)}%${(0x80 | (cp & 0x3f)).toString(16)}`.toUpperCase();
    } else out += encodeURIComponent(ch);
  }
  return out;
}

const brokenEscape = fc.constantFrom(
  "%",
  "%z",
  "%zz",
  "%0",
  "%00",
  "%C0%AF",
  "%FF%FE",
  "%E0%A4%A",
  "%ED%A0%80",
  "%25",
  "%2F",
  "%2e%2e",
  "+",
  "&",
  "=",
  "#",
);

/** One path segment or query value as it appears on the wire. */
export function wireValue(known: readonly string[] = []): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 4, arbitrary: hostileString(known).map(encodeAny) },
    {
      weight: 1,
      arbitrary: fc
        .array(fc.oneof(brokenEscape, fc.constantFrom("a", "b", "1", "-")), { minLength: 1, maxLength: 6 })
        .map((p) => p.join("")),
    },
  );
}

/** A JSON-compatible value of any shape, strings hostile. */
export function hostileJson(known: readonly string[], depth = 2): fc.Arbitrary<unknown> {
  const leaf = fc.oneof(
    hostileString(known),
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.constantFrom(Number.MAX_SAFE_INTEGER + 2, -0, 1e308),
  );
  if (depth <= 0) return leaf;
  return fc.oneof(
    { weight: 3, arbitrary: leaf },
    { weight: 1, arbitrary: fc.array(hostileJson(known, depth - 1), { maxLength: 4 }) },
    { weight: 1, arbitrary: fc.dictionary(hostileString(), hostileJson(known, depth - 1), { maxKeys: 4 }) },
  );
}

/** A request body: an object with the route's likely fields (right or wrong types, missing, extra), any JSON, or not JSON at all. */
export function hostileBody(
  fields: readonly string[],
  known: readonly string[],
): fc.Arbitrary<string | undefined> {
  const objectWithFields = fc
    .record(Object.fromEntries(fields.map((f) => [f, hostileJson(known, 1)])), { requiredKeys: [] })
    .chain((o) =>
      fc
        .dictionary(hostileString(), hostileJson(known, 1), { maxKeys: 2 })
        .map((extra) => ({ ...extra, ...o })),
    );
  return fc.oneof(
    { weight: 5, arbitrary: objectWithFields.map((o) => JSON.stringify(o)) },
    { weight: 2, arbitrary: hostileJson(known).map((v) => JSON.stringify(v) ?? "null") },
    { weight: 1, arbitrary: hostileString() },
    {
      weight: 1,
      arbitrary: fc.constantFrom("{", "[1,", '{"a":1}}', '"\\ud800"', "\u0000", '{"text":"a\\u0000"}'),
    },
    { weight: 1, arbitrary: fc.constant(undefined) },
  );
}

export const contentType = fc.oneof(
  { weight: 6, arbitrary: fc.constant("application/json") },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      "text/plain",
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=x",
      "application/json; charset=latin1",
      "application/problem+json",
      "",
      "\u00ff/\u00ff",
    ),
  },
);
