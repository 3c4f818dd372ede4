/**
 * A Stryker ignorer: mutants inside a call to the server's logger are equivalent for the
 * protocol, since nothing a logger writes reaches a client. Stryker reports them as ignored
 * with this reason instead of counting them as survivors the suite should have caught.
 *
 * The same holds for the `detail` of the errors the server logs and answers with a fixed
 * message (`AuthFailure`, `IdentityProviderUnavailable`). Everything else stays mutated, error
 * messages included: ERR-004 asks every field violation
 * to describe the problem and ERR-007 asks for a helpful status message, so a message blanked by
 * a mutant is something a case could notice.
 */
import { declareValuePlugin, PluginKind } from "@stryker-mutator/api/plugin";
import type { Ignorer, NodePath } from "@stryker-mutator/api/ignore";

/** The name the Stryker options use (`ignorers`). */
export const LOGGING_IGNORER = "continuity-logging";

interface BabelNode {
  readonly type: string;
  readonly name?: string;
  readonly object?: BabelNode;
  readonly property?: BabelNode;
  readonly callee?: BabelNode;
}

/** `logger.warn(…)`, `deps.logger.error(…)`, `this.logger?.info(…)`: the callee's object is a logger. */
function isLoggerCall(node: BabelNode): boolean {
  if (node.type !== "CallExpression" && node.type !== "OptionalCallExpression") return false;
  const callee = node.callee;
  if (callee === undefined || (callee.type !== "MemberExpression" && callee.type !== "OptionalMemberExpression")) return false;
  const target = callee.object;
  if (target === undefined) return false;
  if (target.type === "Identifier") return target.name === "logger";
  return (target.type === "MemberExpression" || target.type === "OptionalMemberExpression") && target.property?.type === "Identifier" && target.property.name === "logger";
}

/**
 * The `intent` argument of `requireOwnSubject(auth, subject, intent)`: the function documents
 * the intent at each call site but never reads it (auth/scopes.ts), so no mutant of it changes
 * anything.
 */
function isUnreadIntentArgument(path: NodePath): boolean {
  const { parent, listKey, key } = path as { parent?: BabelNode; listKey?: string; key?: unknown };
  return parent?.type === "CallExpression" && parent.callee?.type === "Identifier" && parent.callee.name === "requireOwnSubject" && listKey === "arguments" && key === 2;
}

/**
 * Errors whose `detail` argument is written to the log only: the wire carries the reason of
 * an AuthFailure with a fixed message (auth/wire-errors.ts), and IDENTITY_PROVIDER_UNAVAILABLE
 * with a fixed message and the platform (services/token-service.ts).
 */
const LOG_ONLY_DETAIL: Readonly<Record<string, number>> = { AuthFailure: 1, IdentityProviderUnavailable: 1 };

/** The `detail` argument of `new AuthFailure(reason, detail)` or `new IdentityProviderUnavailable(platform, detail)`. */
function isLogOnlyDetail(path: NodePath): boolean {
  const parent = (path as { parent?: BabelNode & { arguments?: readonly unknown[] } }).parent;
  const node = (path as { node?: unknown }).node;
  if (parent?.type !== "NewExpression" || parent.callee?.type !== "Identifier") return false;
  const index = LOG_ONLY_DETAIL[parent.callee.name ?? ""];
  return index !== undefined && parent.arguments?.[index] === node;
}

export const loggingIgnorer: Ignorer = {
  shouldIgnore(path: NodePath): string | undefined {
    const node = (path as { node?: BabelNode }).node;
    if (node !== undefined && isLoggerCall(node)) return "log output: nothing a logger writes reaches a client, so no conformance case can observe it";
    if (isUnreadIntentArgument(path)) return "requireOwnSubject does not read its intent argument, so changing it changes nothing";
    if (isLogOnlyDetail(path)) return "log-only detail: the wire carries the error's reason with a fixed message, so no conformance case can observe it";
    return undefined;
  },
};

export const strykerPlugins = [declareValuePlugin(PluginKind.Ignore, LOGGING_IGNORER, loggingIgnorer)];
