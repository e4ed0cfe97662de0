import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { sampleRatioMismatch } from "../../../functions/src/domain/stats/index.js";
import { expectClose } from "./close.js";

/** Values from Optimizely's ssrm-test and scipy's chisquare (scripts/stats_reference.py). */
const fixture = JSON.parse(
  readFileSync(new URL("../../fixtures/stats/srm.json", import.meta.url), "utf8"),
) as {
  alpha: number;
  cases: {
    expected: number[];
    concentration: number;
    looks: number[][];
    pValues: number[];
    logBayesFactors: number[];
    chiSquarePValue: number;
  }[];
};

describe("sampleRatioMismatch against ssrm-test", () => {
  it.each(fixture.cases.map((c, i) => [i, c] as const))(
    "case %d: Bayes factors and running-minimum p-values at every look",
    (_i, c) => {
      c.looks.forEach((counts, k) => {
        const r = sampleRatioMismatch(counts, c.expected, fixture.alpha, {
          concentration: c.concentration,
          history: c.looks.slice(0, k),
        });
        expect(r.method).toBe("dirichlet-multinomial");
        // log-gamma of numbers near the concentration (10⁴) leaves ~1e-11 of rounding in the difference.
        expect(
          Math.abs(r.logBayesFactor - (c.logBayesFactors[k] as number)),
          `look ${k} log BF`,
        ).toBeLessThan(1e-8);
        expectClose(r.pValue, c.pValues[k], `look ${k} p`, 1e-8);
        expect(r.alarm).toBe((c.pValues[k] as number) < fixture.alpha);
      });
      const last = sampleRatioMismatch(c.looks.at(-1) as number[], c.expected, fixture.alpha, {
        concentration: c.concentration,
      });
      expectClose(last.chiSquarePValue, c.chiSquarePValue, "chi-square p", 1e-9);
    },
  );

  it("fixture covers both quiet and mismatched allocations", () => {
    const fired = fixture.cases.map((c) => (c.pValues.at(-1) as number) < fixture.alpha);
    expect(fired).toContain(true);
    expect(fired).toContain(false);
  });
});

describe("sampleRatioMismatch", () => {
  it("normalises weights and reports observed shares", () => {
    const r = sampleRatioMismatch([30, 70], [1, 3], 0.05);
    expect(r.observedShares).toEqual([0.3, 0.7]);
    expect(r.pValue).toBeGreaterThan(0.05);
  });

  it("falls back to chi-square at p < 0.001 when a cell expected at zero has counts", () => {
    const r = sampleRatioMismatch([500, 500, 3], [1, 1, 0], 0.05);
    expect(r.method).toBe("chi-square");
    expect(r.alarm).toBe(true);
  });

  it("rejects mismatched lengths, negative or fractional counts and empty weights", () => {
    expect(() => sampleRatioMismatch([1, 2], [1], 0.05)).toThrow(RangeError);
    expect(() => sampleRatioMismatch([1, -2], [1, 1], 0.05)).toThrow(RangeError);
    expect(() => sampleRatioMismatch([1.5, 2], [1, 1], 0.05)).toThrow(RangeError);
    expect(() => sampleRatioMismatch([1, 2], [0, 0], 0.05)).toThrow(RangeError);
  });
});
