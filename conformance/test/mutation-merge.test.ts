import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mergeReports, scoresByFolder } from "../src/mutation.js";

// `--merge` and `--reuse` unite reports of runs made side by side. Runs of parts of one file
// (`--mutate 'file:1-40'`, `'file:41-90'`) each report only their part's mutants, under the
// same file name: the merge must keep both parts, not the last report's only.
const FILE = "src/services/example.ts";
const mutant = (id: string, line: number, status: string, replacement = "false") => ({ id, mutatorName: "ConditionalExpression", replacement, status, location: { start: { line, column: 5 }, end: { line, column: 9 } } });
const report = (source: string, mutants: unknown[]) => ({ schemaVersion: "1", thresholds: { high: 90, low: 85 }, files: { [FILE]: { language: "typescript", source, mutants } }, testFiles: {} });

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "mutation-merge-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function written(name: string, content: unknown): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, JSON.stringify(content));
  return path;
}

describe("merging mutation reports", () => {
  it("unites the parts of one file measured on the same source, a later result winning", async () => {
    const first = await written("first.json", report("a\nb\nc\n", [mutant("1", 1, "Killed"), mutant("2", 2, "Survived")]));
    const second = await written("second.json", report("a\nb\nc\n", [mutant("1", 2, "Killed"), mutant("2", 3, "NoCoverage")]));
    const merged = await mergeReports([first, second]);
    const mutants = merged.files[FILE]!.mutants as unknown as readonly { id: string; status: string; location: { start: { line: number } } }[];
    expect(mutants.map((m) => [m.location.start.line, m.status]).sort()).toEqual([[1, "Killed"], [2, "Killed"], [3, "NoCoverage"]]);
    expect(new Set(mutants.map((m) => m.id)).size).toBe(3);
    const [services] = scoresByFolder(merged, ["src/services/"]);
    expect([services!.killed, services!.survived, services!.noCoverage]).toEqual([2, 0, 1]);
  });

  it("keeps two mutants of one place that differ in their replacement", async () => {
    const first = await written("a.json", report("x\n", [mutant("1", 1, "Killed", "true")]));
    const second = await written("b.json", report("x\n", [mutant("1", 1, "Survived", "false")]));
    expect((await mergeReports([first, second])).files[FILE]!.mutants).toHaveLength(2);
  });

  it("takes the later report's file whole when the source changed between the runs", async () => {
    const first = await written("old.json", report("old\n", [mutant("1", 1, "Survived"), mutant("2", 2, "Survived")]));
    const second = await written("new.json", report("new\n", [mutant("1", 1, "Killed")]));
    const mutants = (await mergeReports([first, second])).files[FILE]!.mutants as readonly { status: string }[];
    expect(mutants.map((m) => m.status)).toEqual(["Killed"]);
  });
});
