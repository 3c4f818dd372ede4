import type { Parameters } from "fast-check";

/**
 * How hard the property tests in this folder push. CI runs them as they are, in seconds;
 * a dedicated run turns them up:
 *
 *   FUZZ_RUNS=100000 npx vitest run --project reference-server test/fuzz
 *
 * A failure prints fast-check's seed and path; FUZZ_SEED (and FUZZ_PATH) replay it exactly.
 */
export const FUZZ_RUNS = positiveInteger(process.env["FUZZ_RUNS"]) ?? 200;

function positiveInteger(text: string | undefined): number | undefined {
  if (text === undefined || text === "") return undefined;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`FUZZ_RUNS must be a positive integer, got ${JSON.stringify(text)}`);
  return value;
}

/** fast-check parameters for a property worth `weight` of the base run count (a cheap one more). */
export function fuzzParameters<T>(weight = 1): Parameters<T> {
  const seed = process.env["FUZZ_SEED"];
  const path = process.env["FUZZ_PATH"];
  return {
    numRuns: Math.max(1, Math.round(FUZZ_RUNS * weight)),
    ...(seed === undefined || seed === "" ? {} : { seed: Number(seed) }),
    ...(path === undefined || path === "" ? {} : { path }),
  };
}

/** A vitest timeout that grows with the run count: 30 s in CI, more for a long run. */
export function fuzzTimeoutMs(weight = 1): number {
  return Math.max(30_000, FUZZ_RUNS * weight * 5);
}
