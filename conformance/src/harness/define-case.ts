import type { CaseContext } from "./context.js";

/** The profiles a case can belong to (`ServerInfo.profiles`, lower case). */
export type ProfileName = "core" | "identity" | "portability";

/** What a case needs beyond a reachable server; unmet needs make it `skip`. */
export type CaseNeed =
  /** The suite started the server and can restart it (spawn mode). */
  "restart"
  /** The suite can start a second server of the same implementation (spawn mode). */
  | "second-server"
  /** The suite hosts OpenID providers the server was configured to trust (spawn mode). */
  | "oidc-provider";

/** A conformance case: one behaviour, checked over the wire, naming the requirements it proves. */
export interface ConformanceCase {
  /** Stable id, `area.behaviour` in kebab-case; reports and known-failure files name it. */
  readonly id: string;
  /** Requirement IDs from docs/spec (e.g. `APPEND-004`); the case's level derives from them. */
  readonly requirements: readonly string[];
  readonly profile: ProfileName;
  readonly needs: readonly CaseNeed[];
  /** Runs alone, after every parallel case, because it disturbs the whole server. */
  readonly exclusive: boolean;
  readonly timeoutMs: number;
  readonly run: (ctx: CaseContext) => Promise<void>;
}

/** What a case author writes; defaults fill the rest. */
export interface CaseDefinition {
  readonly id: string;
  readonly requirements: readonly string[];
  readonly profile: ProfileName;
  readonly needs?: readonly CaseNeed[];
  readonly exclusive?: boolean;
  readonly timeoutMs?: number;
  readonly run: (ctx: CaseContext) => Promise<void>;
}

const CASE_ID = /^[a-z0-9]+(-[a-z0-9]+)*(\.[a-z0-9]+(-[a-z0-9]+)*)+$/;
const REQUIREMENT_ID = /^[A-Z]+-\d{3}$/;

/**
 * Declares a case. Ids and requirement ids are checked at load time so that a typo fails
 * the suite's own tests instead of silently weakening coverage.
 */
export function defineCase(definition: CaseDefinition): ConformanceCase {
  if (!CASE_ID.test(definition.id)) throw new Error(`case id "${definition.id}" must look like area.behaviour-name`);
  if (definition.requirements.length === 0) throw new Error(`case ${definition.id} must name at least one requirement`);
  for (const requirement of definition.requirements) {
    if (!REQUIREMENT_ID.test(requirement)) throw new Error(`case ${definition.id}: bad requirement id "${requirement}"`);
  }
  return {
    id: definition.id,
    requirements: definition.requirements,
    profile: definition.profile,
    needs: definition.needs ?? [],
    exclusive: definition.exclusive ?? false,
    timeoutMs: definition.timeoutMs ?? 20_000,
    run: definition.run,
  };
}
