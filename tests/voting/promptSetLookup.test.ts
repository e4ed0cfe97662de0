/** The request path's prompt-set lookup: a set found stays found; a miss is asked again after its TTL. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { importPromptSet, PromptSetLookup } from "../../functions/src/voting/promptSets.js";
import { type Harness, openHarness } from "../api/votingHarness.js";

describe("PromptSetLookup", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await openHarness("pglite");
  });
  afterAll(async () => h?.close());

  it("finds a set by name or id, remembers misses for missTtlMs only", async () => {
    const lookup = new PromptSetLookup(h.deps.db, { missTtlMs: 300, maxEntries: 10 });
    expect(await lookup.find("later")).toBeNull();
    const { promptSetId } = await importPromptSet(h.deps.db, { name: "later", source: "test" }, [
      { text: "a red circle", category: null, challenge: null },
    ]);
    // still inside the miss's TTL: the remembered miss answers
    expect(await lookup.find("later")).toBeNull();
    await new Promise((r) => setTimeout(r, 350));
    expect(await lookup.find("later")).toEqual({ id: promptSetId, name: "later" });
    expect(await lookup.find(promptSetId)).toEqual({ id: promptSetId, name: "later" });
    expect(await lookup.find("nope")).toBeNull();
  });
});
