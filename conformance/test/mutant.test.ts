import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import ts from "typescript";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { longestFirst, REFERENCE_SERVER_MUTANTS, REFERENCE_SERVER_SRC } from "../src/mutants.js";
import { copySources, defineMutant, loadMutants, mutateSources, type Mutant } from "../src/runner/mutant.js";
import { ALL_CASES } from "../src/cases/index.js";
import { caseLevel, loadRequirements } from "../src/runner/requirements.js";

/** Every file under `dir` with its text, so a test can prove a folder was left as it was. */
async function snapshotTree(dir: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    files[path.slice(dir.length + 1)] = await readFile(path, "utf8");
  }
  return files;
}

const mutant = (edits: Mutant["edits"]): Mutant => defineMutant({ name: "test-mutant", area: "APPEND", description: "A test mutant.", edits });

describe("the mutant applier", () => {
  let scratch: string;
  let src: string;

  beforeEach(async () => {
    scratch = await mkdtemp(join(tmpdir(), "continuity-mutant-test-"));
    src = join(scratch, "src");
    await mkdir(join(src, "store"), { recursive: true });
    await writeFile(join(src, "main.ts"), 'import "./store/store.js";\nif (seq > last + 1) return gap();\n');
    await writeFile(join(src, "store", "store.ts"), "export const a = 1;\nexport const b = 1;\n");
    await writeFile(join(src, "data.bin"), "untouched");
  });
  afterEach(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it("applies the edits in order to a copy, leaves the original alone, and reverts", async () => {
    const before = await snapshotTree(src);
    const copy = await copySources(src, join(scratch, "copy"));
    expect(await snapshotTree(copy.dir)).toEqual(before);
    await copy.apply(
      mutant([
        { file: "main.ts", find: "if (seq > last + 1)", replace: "if (false)" },
        { file: "store/store.ts", find: "export const a = 1;", replace: "export const a = 2; // $& $1" },
        { file: "store/store.ts", find: "a = 2;", replace: "a = 3;" },
      ]),
    );
    expect(await snapshotTree(src)).toEqual(before);
    expect(await snapshotTree(copy.dir)).toEqual({
      "main.ts": 'import "./store/store.js";\nif (false) return gap();\n',
      "store/store.ts": "export const a = 3; // $& $1\nexport const b = 1;\n",
      "data.bin": "untouched",
    });
    await expect(copy.apply(mutant([{ file: "main.ts", find: "gap()", replace: "ok()" }]))).rejects.toThrow(/test-mutant is still applied/);
    await copy.revert();
    expect(await snapshotTree(copy.dir)).toEqual(before);
    await copy.apply(mutant([{ file: "store/store.ts", find: "b = 1", replace: "b = 2" }]));
    expect((await snapshotTree(copy.dir))["store/store.ts"]).toBe("export const a = 1;\nexport const b = 2;\n");
    expect(await snapshotTree(src)).toEqual(before);
  });

  it.each([
    ["a find text that occurs nowhere", { file: "main.ts", find: "if (seq >= last)", replace: "if (false)" }, /no longer applies: edit 1 \(main\.ts\): "if \(seq >= last\)" occurs nowhere/],
    ["a find text that occurs twice", { file: "store/store.ts", find: " = 1;", replace: " = 2;" }, /no longer applies: edit 1 \(store\/store\.ts\): "= 1;" occurs 2 times; it must occur exactly once/],
    ["an edit of a file that does not exist", { file: "gone.ts", find: "x", replace: "y" }, /no longer applies: edit 1 \(gone\.ts\): cannot read the file/],
    ["an edit that changes nothing", { file: "main.ts", find: "gap()", replace: "gap()" }, /the replacement equals the find text/],
    ["an empty find text", { file: "main.ts", find: "", replace: "x" }, /the find text is empty/],
    ["a path outside the source folder", { file: "../outside.ts", find: "x", replace: "y" }, /must be a path inside the source folder/],
  ])("refuses %s before writing anything", async (_what, edit, message) => {
    const before = await snapshotTree(src);
    const copy = await copySources(src, join(scratch, "copy"));
    await expect(copy.apply(mutant([edit]))).rejects.toThrow(message);
    expect(await snapshotTree(src)).toEqual(before);
    expect(await snapshotTree(copy.dir)).toEqual(before);
  });

  it("judges a later edit against what the earlier edits left", async () => {
    const read = (file: string) => readFile(join(src, file), "utf8");
    await expect(
      mutateSources(mutant([
        { file: "store/store.ts", find: "a = 1", replace: "b = 1" },
        { file: "store/store.ts", find: "b = 1", replace: "c = 1" },
      ]), read),
    ).rejects.toThrow(/edit 2 .*occurs 2 times/);
    await expect(
      mutateSources(mutant([
        { file: "main.ts", find: "gap()", replace: "ok()" },
        { file: "main.ts", find: "ok()", replace: "gap()" },
      ]), read),
    ).rejects.toThrow(/no longer applies: its edits cancel out/);
  });

  it("refuses to copy onto an existing folder", async () => {
    const copy = join(scratch, "copy");
    await mkdir(copy);
    await expect(copySources(src, copy)).rejects.toMatchObject({ code: "EEXIST" });
  });

  it("loads definitions by file name and refuses a name that differs from it", async () => {
    const dir = join(scratch, "mutants");
    await mkdir(dir);
    const definition = (name: string) =>
      `export default { name: ${JSON.stringify(name)}, area: "APPEND", description: "d", edits: [{ file: "main.ts", find: "a", replace: "b" }] };\n`;
    await writeFile(join(dir, "second-one.ts"), definition("second-one"));
    await writeFile(join(dir, "first-one.ts"), definition("first-one"));
    await writeFile(join(dir, "README.md"), "not a definition");
    expect((await loadMutants(dir)).map((m) => m.name)).toEqual(["first-one", "second-one"]);
    await writeFile(join(dir, "third-one.ts"), definition("other-name"));
    await expect(loadMutants(dir)).rejects.toThrow(/third-one\.ts defines "other-name"; the name must equal the file name/);
  });

  it("loads the cases known to catch a mutant, and refuses a caughtBy that lists no case ids", async () => {
    // One folder per definition: a module, once imported, is not read again.
    const load = async (folder: string, caughtBy: string) => {
      const dir = join(scratch, folder);
      await mkdir(dir);
      await writeFile(join(dir, "hinted-one.ts"), `export default { name: "hinted-one", area: "APPEND", description: "d", caughtBy: ${caughtBy}, edits: [{ file: "main.ts", find: "a", replace: "b" }] };\n`);
      return loadMutants(dir);
    };
    expect((await load("good", '["append.gap", "append.retry"]'))[0]?.caughtBy).toEqual(["append.gap", "append.retry"]);
    for (const [index, bad] of ["[]", '"append.gap"', '[""]', "[1]"].entries()) {
      await expect(load(`bad-${index}`, bad)).rejects.toThrow(/hinted-one\.ts has a caughtBy that is not a non-empty list of case ids/);
    }
  });
});

describe("the order of a mutant run", () => {
  it("starts the mutants longest expected first: unhinted ones, then by their slowest caughtBy case, ties by name", () => {
    const hinted = (name: string, caughtBy?: string[]): Mutant => ({ ...mutant([{ file: "main.ts", find: "a", replace: "b" }]), name, ...(caughtBy === undefined ? {} : { caughtBy }) });
    const durations = new Map([["case.fast", 100], ["case.slow", 30_000], ["case.middle", 2_000]]);
    const order = longestFirst(
      [hinted("a-fast", ["case.fast"]), hinted("b-unhinted"), hinted("c-slow", ["case.fast", "case.slow"]), hinted("d-middle", ["case.middle"]), hinted("e-unknown", ["case.gone"]), hinted("f-fast", ["case.fast"]), hinted("g-unhinted")],
      durations,
    );
    expect(order.map((m) => m.name)).toEqual(["b-unhinted", "g-unhinted", "c-slow", "d-middle", "a-fast", "f-fast", "e-unknown"]);
  });
});

/** TypeScript's syntax errors of each file (no type check), from one program over them all. */
function syntaxErrors(files: ReadonlyMap<string, string>): Map<string, string[]> {
  const sources = new Map([...files].map(([name, text]) => [name, ts.createSourceFile(name, text, ts.ScriptTarget.Latest)]));
  const host: ts.CompilerHost = { ...ts.createCompilerHost({}), getSourceFile: (name) => sources.get(name) };
  const program = ts.createProgram({ rootNames: [...sources.keys()], options: { noLib: true, noResolve: true, types: [] }, host });
  const errors = new Map<string, string[]>();
  for (const [name, source] of sources) {
    const found = program.getSyntacticDiagnostics(source).map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"));
    if (found.length > 0) errors.set(name, found);
  }
  return errors;
}

// The mutant run proves each mutant is caught; these prove, within seconds, that each one
// still is a mutant of today's server: it applies, it changes the code, and the code parses.
describe("the reference server's mutants", () => {
  it("each applies cleanly to the current sources and leaves code that parses", async () => {
    const mutants = await loadMutants(REFERENCE_SERVER_MUTANTS);
    expect(mutants.length).toBeGreaterThan(0);
    const requirements = await loadRequirements();
    const areas = new Set([...requirements.byId.keys()].map((id) => id.replace(/-\d+$/, "")));
    const problems: string[] = [];
    const mutated = new Map<string, string>();
    for (const mutant of mutants) {
      if (!areas.has(mutant.area)) problems.push(`${mutant.name}: area ${mutant.area} is no requirement ID prefix`);
      // `should` is for faults only a SHOULD case can see; a MUST rule's mutant is caught by MUST cases.
      for (const id of mutant.should ?? []) if (requirements.byId.get(id)?.level !== "SHOULD") problems.push(`${mutant.name}: should names ${id}, which is no SHOULD requirement`);
      const changed = await mutateSources(mutant, (file) => readFile(join(REFERENCE_SERVER_SRC, file), "utf8")).catch((error: unknown) => {
        problems.push((error as Error).message);
        return new Map<string, string>();
      });
      for (const [file, text] of changed) {
        if (text === (await readFile(join(REFERENCE_SERVER_SRC, file), "utf8"))) problems.push(`${mutant.name} leaves ${file} as it was`);
        mutated.set(`${mutant.name}/${file}`, text);
      }
    }
    for (const [file, errors] of syntaxErrors(mutated)) problems.push(`${file} does not parse: ${errors.join("; ")}`);
    expect(problems).toEqual([]);
  });

  it("name as caughtBy only cases of the suite that can catch a mutant (MUST cases, or cases of its should)", async () => {
    const requirements = await loadRequirements();
    const cases = new Map(ALL_CASES.map((c) => [c.id, c]));
    const problems: string[] = [];
    for (const mutant of await loadMutants(REFERENCE_SERVER_MUTANTS)) {
      for (const id of mutant.caughtBy ?? []) {
        const named = cases.get(id);
        if (named === undefined) problems.push(`${mutant.name}: caughtBy names ${id}, which is no case of the suite`);
        else if (caseLevel(named.requirements, requirements) !== "MUST" && !named.requirements.some((r) => mutant.should?.includes(r))) {
          problems.push(`${mutant.name}: caughtBy names ${id}, which proves no MUST requirement (nor one of the mutant's should)`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it("are the only faults: the shipped server has no switch for any", async () => {
    const seams = /\bfault\(|unsafe-test-fault|CONTINUITY_ALLOW_TEST_FAULTS|rewindStream|testing\/faults/;
    const found: string[] = [];
    for (const entry of await readdir(REFERENCE_SERVER_SRC, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile() || !entry.name.endsWith(".ts")) continue;
      const path = join(entry.parentPath, entry.name);
      for (const [index, line] of (await readFile(path, "utf8")).split("\n").entries()) {
        if (seams.test(line)) found.push(`${path.slice(REFERENCE_SERVER_SRC.length + 1)}:${index + 1}: ${line.trim()}`);
      }
    }
    expect(found).toEqual([]);
  });
});
