import { expect } from "vitest";

/** Deep closeness: every number agrees within `rel` of its size (or 1e-12 near zero). */
export function expectClose(actual: unknown, expected: unknown, path = "value", rel = 1e-9): void {
  if (typeof expected === "number") {
    expect(typeof actual, path).toBe("number");
    const tol = Math.max(1e-12, rel * Math.abs(expected));
    expect(Math.abs((actual as number) - expected), `${path}: ${actual} vs ${expected}`).toBeLessThanOrEqual(
      tol,
    );
  } else if (expected && typeof expected === "object") {
    for (const [k, v] of Object.entries(expected))
      expectClose((actual as Record<string, unknown>)[k], v, `${path}.${k}`, rel);
  } else expect(actual, path).toEqual(expected);
}
