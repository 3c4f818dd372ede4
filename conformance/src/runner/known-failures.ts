import { readFile } from "node:fs/promises";

/** Case id -> why it is expected to fail on this implementation. */
export type KnownFailures = ReadonlyMap<string, string>;

/**
 * Reads a known-failures file: a JSON array of `{ "case": "<case id>", "reason": "<why>" }`.
 * A reason is mandatory, so that every accepted failure stays explained in the repository
 * of the implementation that carries it.
 */
export async function loadKnownFailures(path: string): Promise<KnownFailures> {
  const parsed = JSON.parse(await readFile(path, "utf8")) as unknown;
  if (!Array.isArray(parsed)) throw new Error(`${path}: known failures must be a JSON array of {"case", "reason"}`);
  const entries = new Map<string, string>();
  for (const [index, entry] of parsed.entries()) {
    const item = entry as { case?: unknown; reason?: unknown };
    if (typeof item.case !== "string" || typeof item.reason !== "string" || item.reason.trim() === "") {
      throw new Error(`${path}[${index}]: each entry needs a "case" id and a non-empty "reason"`);
    }
    if (entries.has(item.case)) throw new Error(`${path}[${index}]: case ${item.case} is listed twice`);
    entries.set(item.case, item.reason);
  }
  return entries;
}
