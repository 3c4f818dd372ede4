import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ProfileName } from "../harness/define-case.js";

/** Requirement levels of RFC 2119 as the spec uses them. */
export type RequirementLevel = "MUST" | "SHOULD" | "MAY";

/** One entry of docs/spec/requirements.json. */
export interface Requirement {
  readonly id: string;
  readonly level: RequirementLevel;
  readonly profile: ProfileName;
  readonly file: string;
  readonly section: string;
  readonly text: string;
}

/** The spec's requirements plus the hash that pins which spec text a report was run against. */
export interface RequirementSet {
  readonly byId: ReadonlyMap<string, Requirement>;
  /** sha256 (hex) of the requirements file bytes; undefined when the file is missing. */
  readonly sha256: string | undefined;
  readonly path: string;
}

/** Where the generated requirement list lives in this repository. */
export const DEFAULT_REQUIREMENTS_FILE = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "docs", "spec", "requirements.json");

/** Loads the requirement set; a missing file yields an empty set (every case then counts as MUST). */
export async function loadRequirements(path = DEFAULT_REQUIREMENTS_FILE): Promise<RequirementSet> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch {
    return { byId: new Map(), sha256: undefined, path };
  }
  // Either a bare array or `{ format, digest: "sha256:<hex>", requirements: [...] }`; the
  // generator's own digest identifies the requirement set when it is present.
  const parsed = JSON.parse(bytes.toString("utf8")) as Requirement[] | { digest?: string; requirements?: Requirement[] };
  const list = Array.isArray(parsed) ? parsed : parsed.requirements;
  if (!Array.isArray(list)) throw new Error(`${path} must hold requirements as an array or under "requirements"`);
  const declared = Array.isArray(parsed) ? undefined : parsed.digest?.replace(/^sha256:/, "");
  return {
    byId: new Map(list.map((requirement) => [requirement.id, requirement])),
    sha256: declared ?? createHash("sha256").update(bytes).digest("hex"),
    path,
  };
}

/**
 * A case is as strict as the strictest requirement it proves. An id the spec does not (yet)
 * define counts as MUST, so an unknown id can never soften a failure into a warning.
 */
export function caseLevel(requirementIds: readonly string[], set: RequirementSet): RequirementLevel {
  const levels = requirementIds.map((id) => set.byId.get(id)?.level ?? "MUST");
  if (levels.includes("MUST")) return "MUST";
  if (levels.includes("SHOULD")) return "SHOULD";
  return "MAY";
}
