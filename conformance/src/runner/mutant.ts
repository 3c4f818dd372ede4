// A mutant is a deliberate fault written as the source edits that make it, the form mutation
// tools use: the shipped server carries no switch for it. The mutant runner applies the edits
// to a copy of the server's sources and starts the copy.
import { cp, mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { basename, isAbsolute, join, normalize, sep } from "node:path";
import { pathToFileURL } from "node:url";

/** One textual edit to a source file. */
export interface MutantEdit {
  /** The file, relative to the source folder that is copied (e.g. `services/stream-service.ts`). */
  readonly file: string;
  /**
   * Text that occurs exactly once in the file, as the mutant's earlier edits left it; anything
   * else means the source moved on and the mutant must be rewritten, never guessed.
   */
  readonly find: string;
  /** What replaces it, taken literally (no `$&` patterns). */
  readonly replace: string;
}

/** A deliberate fault that the conformance suite must catch. */
export interface Mutant {
  /** kebab-case; equal to the name of the file that defines it. */
  readonly name: string;
  /** The requirement area (ID prefix, e.g. `APPEND`) whose cases should catch it; they run first. */
  readonly area: string;
  /** What the mutant breaks, in one sentence. */
  readonly description: string;
  /**
   * Only for a fault that breaks a SHOULD requirement and no MUST one (LIMIT-022: how fast is
   * fast enough depends on the machine, so it cannot be a MUST): those requirement IDs. The
   * run is then only the cases proving them, and a case of them that does not pass (`warn`)
   * catches the mutant, as a failing MUST case catches any other.
   */
  readonly should?: readonly string[];
  /**
   * Ids of the cases known to catch it (what the last runs found): they run before all others,
   * so that a caught mutant costs only them. A hint, never the verdict: if they stop catching
   * it, the rest of the suite still runs, and the mutant is caught only as it would be without
   * them: by a failing MUST case (or a warning case of its `should`).
   */
  readonly caughtBy?: readonly string[];
  readonly edits: readonly MutantEdit[];
}

/** Declares a mutant; a definition file's default export. */
export function defineMutant(mutant: Mutant): Mutant {
  return mutant;
}

/** A mutant whose edits do not fit the sources any more (or that is malformed). */
export class MutantError extends Error {
  override readonly name = "MutantError";
}

const NAME = /^[a-z0-9]+(-[a-z0-9]+)+$/;
const AREA = /^[A-Z]+$/;

function occurrences(text: string, find: string): number {
  let count = 0;
  for (let at = text.indexOf(find); at !== -1; at = text.indexOf(find, at + 1)) count += 1;
  return count;
}

function preview(text: string): string {
  const line = text.trim().split("\n")[0] ?? "";
  return JSON.stringify(line.length > 80 ? `${line.slice(0, 80)}…` : line);
}

/** A relative path that stays inside the source folder, or a MutantError. */
function safeRelative(mutant: string, file: string): string {
  const normalized = normalize(file);
  if (file === "" || isAbsolute(file) || normalized.split(sep).includes("..")) {
    throw new MutantError(`mutant ${mutant}: edit file ${JSON.stringify(file)} must be a path inside the source folder`);
  }
  return normalized;
}

/**
 * Applies a mutant's edits in order to the sources that `read` returns (paths relative to the
 * source folder) and returns every file it changed with its new text. Throws
 * "mutant X no longer applies" unless each `find` occurs exactly once and the mutant changes
 * something, so a refactor can never silently turn a mutant into the unmodified server.
 */
export async function mutateSources(mutant: Mutant, read: (file: string) => Promise<string>): Promise<Map<string, string>> {
  if (mutant.edits.length === 0) throw new MutantError(`mutant ${mutant.name} has no edits`);
  const original = new Map<string, string>();
  const changed = new Map<string, string>();
  for (const [index, edit] of mutant.edits.entries()) {
    const file = safeRelative(mutant.name, edit.file);
    const where = `mutant ${mutant.name} no longer applies: edit ${index + 1} (${file})`;
    if (edit.find === "") throw new MutantError(`${where}: the find text is empty`);
    if (edit.find === edit.replace) throw new MutantError(`${where}: the replacement equals the find text`);
    if (!original.has(file)) {
      let text: string;
      try {
        text = await read(file);
      } catch (cause) {
        throw new MutantError(`${where}: cannot read the file`, { cause });
      }
      original.set(file, text);
      changed.set(file, text);
    }
    const text = changed.get(file)!;
    const count = occurrences(text, edit.find);
    if (count !== 1) {
      throw new MutantError(`${where}: ${preview(edit.find)} occurs ${count === 0 ? "nowhere" : `${count} times`}; it must occur exactly once`);
    }
    const at = text.indexOf(edit.find);
    changed.set(file, text.slice(0, at) + edit.replace + text.slice(at + edit.find.length));
  }
  for (const [file, text] of changed) if (text === original.get(file)) changed.delete(file);
  if (changed.size === 0) throw new MutantError(`mutant ${mutant.name} no longer applies: its edits cancel out`);
  return changed;
}

/** A copy of a source folder that mutants are applied to, one at a time. */
export interface SourceCopy {
  readonly dir: string;
  /**
   * Applies `mutant` to the copy. Its edits are checked against the copy's sources before
   * anything is written; a copy holds one mutant at a time.
   */
  apply(mutant: Mutant): Promise<void>;
  /** Puts back the files the applied mutant changed, so the copy equals its source again. */
  revert(): Promise<void>;
}

/**
 * Copies `sourceDir` to `copyDir` (which must not exist yet); `sourceDir` is only read. A
 * copy is meant to be reused for one mutant after another, so that a run copies the sources
 * once per parallel run rather than once per mutant.
 */
export async function copySources(sourceDir: string, copyDir: string): Promise<SourceCopy> {
  await mkdir(copyDir);
  await cp(sourceDir, copyDir, { recursive: true });
  let applied: { readonly name: string; readonly originals: Map<string, string> } | undefined;
  return {
    dir: copyDir,
    async apply(mutant) {
      if (applied !== undefined) throw new MutantError(`mutant ${applied.name} is still applied to ${copyDir}`);
      const read = (file: string) => readFile(join(copyDir, file), "utf8");
      const changed = await mutateSources(mutant, read);
      const originals = new Map<string, string>();
      for (const file of changed.keys()) originals.set(file, await read(file));
      applied = { name: mutant.name, originals };
      for (const [file, text] of changed) await writeFile(join(copyDir, file), text);
    },
    async revert() {
      if (applied === undefined) return;
      for (const [file, text] of applied.originals) await writeFile(join(copyDir, file), text);
      applied = undefined;
    },
  };
}

/**
 * Loads every mutant definition in `dir`: one `<name>.ts` file per mutant whose default export
 * is {@link defineMutant}'s result. Sorted by name.
 */
export async function loadMutants(dir: string): Promise<Mutant[]> {
  const files = (await readdir(dir)).filter((file) => file.endsWith(".ts")).sort();
  const mutants: Mutant[] = [];
  for (const file of files) {
    const module = (await import(pathToFileURL(join(dir, file)).href)) as { default?: unknown };
    mutants.push(checkMutant(module.default, basename(file, ".ts"), join(dir, file)));
  }
  return mutants;
}

function checkMutant(value: unknown, expectedName: string, path: string): Mutant {
  const problem = mutantProblem(value as Partial<Mutant> | undefined, expectedName);
  if (problem !== undefined) throw new MutantError(`${path} ${problem}`);
  return value as Mutant;
}

function mutantProblem(mutant: Partial<Mutant> | undefined, expectedName: string): string | undefined {
  if (mutant === undefined || typeof mutant !== "object") return "has no default export; write `export default defineMutant({ ... })`";
  if (mutant.name !== expectedName) return `defines ${JSON.stringify(mutant.name)}; the name must equal the file name`;
  if (!NAME.test(expectedName)) return "has a name that is not kebab-case";
  if (typeof mutant.area !== "string" || !AREA.test(mutant.area)) return "needs an area: a requirement ID prefix such as APPEND";
  if (typeof mutant.description !== "string" || mutant.description.trim() === "") return "needs a description";
  if (mutant.should !== undefined && (!Array.isArray(mutant.should) || mutant.should.length === 0 || mutant.should.some((id) => typeof id !== "string" || !/^[A-Z]+-\d{3}$/.test(id)))) {
    return "has a `should` that is not a non-empty list of requirement IDs";
  }
  if (mutant.caughtBy !== undefined && (!Array.isArray(mutant.caughtBy) || mutant.caughtBy.length === 0 || mutant.caughtBy.some((id) => typeof id !== "string" || id === ""))) {
    return "has a caughtBy that is not a non-empty list of case ids";
  }
  if (!Array.isArray(mutant.edits) || mutant.edits.length === 0) return "needs at least one edit";
  const edits = mutant.edits as readonly Partial<MutantEdit>[];
  if (edits.some((e) => typeof e.file !== "string" || typeof e.find !== "string" || typeof e.replace !== "string")) {
    return "has an edit without string file, find and replace";
  }
  return undefined;
}
