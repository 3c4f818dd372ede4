import type { AuthContext, Scope } from "./context.js";
import { scopeInsufficient, subjectNotFound } from "./wire-errors.js";

/**
 * Refuses the call with PERMISSION_DENIED / SCOPE_INSUFFICIENT (metadata `scope`) unless the
 * token carries `scope`. Services call it first thing, before reading anything, so a
 * missing scope never reveals whether a resource exists.
 */
export function requireScope(auth: AuthContext, scope: Scope): void {
  if (!auth.scopes.has(scope)) throw scopeInsufficient(scope);
}

/** What a call intends to do with a subject's data. */
export type SubjectIntent = "read" | "write" | "manage";

/**
 * The isolation rule: a token acts for exactly one subject, and naming any other subject
 * answers NOT_FOUND / SUBJECT_NOT_FOUND — never PERMISSION_DENIED, which would confirm that
 * the other subject exists.
 */
// Stryker disable next-line StringLiteral: this function does not look at the intent, so "" changes nothing
export function requireOwnSubject(auth: AuthContext, subjectId: string, intent: SubjectIntent = "read"): void {
  if (subjectId === auth.subjectId) return;
  throw subjectNotFound();
}
