import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Status } from "nice-grpc-common";
import { describe, expect, it } from "vitest";
import { REASONS } from "../src/harness/expect.js";
import { REPO_ROOT } from "../src/run.js";
// @ts-expect-error -- a plain .mjs script without type declarations; parseErrorTable is what checks errors.md against errors.proto
import { parseErrorTable } from "../../scripts/requirements.mjs";

// The suite judges every error by its own copy of the reason table. The spec's table
// (docs/spec/errors.md) is already checked against errors.proto by scripts/requirements.mjs;
// this keeps the suite's copy equal to it, so a new or changed reason cannot be judged by a
// stale rule.
function specTable(): Record<string, { code: Status; metadata: string[] }> {
  const rows: { reason: string; code: string; metadata: string[] }[] = parseErrorTable(readFileSync(join(REPO_ROOT, "docs", "spec", "errors.md"), "utf8"));
  return Object.fromEntries(rows.map((row) => [row.reason, { code: Status[row.code as keyof typeof Status], metadata: [...row.metadata] }]));
}

describe("the suite's reason table", () => {
  it("equals the spec's error table, reason by reason", () => {
    const spec = specTable();
    expect(Object.keys(spec).length).toBeGreaterThan(40);
    const suite = Object.fromEntries(Object.entries(REASONS).map(([reason, rule]) => [reason, { code: rule.code, metadata: [...rule.metadata].sort() }]));
    const expected = Object.fromEntries(Object.entries(spec).map(([reason, rule]) => [reason, { code: rule.code, metadata: [...rule.metadata].sort() }]));
    expect(suite).toEqual(expected);
  });
});
