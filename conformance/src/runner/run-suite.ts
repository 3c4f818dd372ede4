import { ClientError, Status } from "nice-grpc-common";
import { createClientPool } from "../harness/clients.js";
import { createCaseContext, type TargetView } from "../harness/context.js";
import type { OidcProvider } from "../harness/oidc-provider.js";
import type { ConformanceCase, ProfileName } from "../harness/define-case.js";
import { CaseSkipped, ConformanceFailure } from "../harness/expect.js";
import { createTraceLog, formatTrace } from "../harness/trace.js";
import type { PlatformKeySet } from "../fixtures/platform-keys.js";
import { v1 } from "../harness/clients.js";
import type { KnownFailures } from "./known-failures.js";
import { caseLevel, type RequirementLevel, type RequirementSet } from "./requirements.js";
import type { Target } from "./target.js";
import type { ChannelCredentials } from "@grpc/grpc-js";
import { channelCredentials } from "../harness/security.js";

/** Every status a case can end in. `error` is harness trouble, kept apart from failures. */
export type CaseStatus = "pass" | "fail" | "warn" | "skip" | "expected-fail" | "unexpected-pass" | "error";

/** What happened to one case. */
export interface CaseResult {
  readonly id: string;
  readonly requirements: readonly string[];
  readonly profile: ProfileName;
  readonly level: RequirementLevel;
  readonly status: CaseStatus;
  readonly durationMs: number;
  /** Why it failed, was skipped, or is a known failure. */
  readonly message?: string;
  /** Notes the case left, and the wire exchange of a failing case. */
  readonly evidence?: readonly string[];
  readonly trace?: string;
}

/** What a run needs. */
export interface SuiteOptions {
  readonly target: Target;
  readonly platforms: PlatformKeySet;
  /** The assertion audience; undefined = `ServerInfo.assertion_audience`. */
  readonly audience: string | undefined;
  /** Profiles the implementer claims; undefined = whatever ServerInfo declares. */
  readonly claimedProfiles: readonly ProfileName[] | undefined;
  readonly cases: readonly ConformanceCase[];
  readonly filter: RegExp | undefined;
  readonly concurrency: number;
  readonly knownFailures: KnownFailures;
  readonly requirements: RequirementSet;
  /** Stop at the first MUST failure (mutant runs). */
  readonly bail: boolean;
  /**
   * Each case's time limit is multiplied by this (default 1): for a server on a machine that
   * other work shares, where a case that would finish is slowed past its limit. The limit
   * only bounds a case that hangs; no check inside a case is scaled.
   */
  readonly timeoutScale?: number;
  /**
   * Ids of cases to run before every other case, as a phase of their own: a mutant run names
   * the cases known to catch its mutant (`caughtBy`), so that with `bail` a run they catch
   * costs only them. The other cases follow in their order, as they would without it.
   */
  readonly first?: readonly string[];
  readonly onResult?: (result: CaseResult) => void;
  /** The OpenID providers the spawned server trusts; absent in attach mode. */
  readonly oidc?: OidcProvider;
  /** Called once the selection is known, before any case runs (progress displays). */
  readonly onPlan?: (plan: { readonly total: number }) => void;
  /** Called when a case starts running. */
  readonly onCaseStart?: (id: string) => void;
}

/** The outcome of a whole run, as reporters see it. */
export interface SuiteReport {
  readonly suiteVersion: string;
  readonly requirementsSha256: string | undefined;
  readonly target: string;
  readonly mode: "attach" | "spawn";
  readonly claimedProfiles: readonly ProfileName[];
  readonly declaredProfiles: readonly ProfileName[];
  readonly profileMismatch: string | undefined;
  readonly implementation: string;
  readonly results: readonly CaseResult[];
  /** Harness-level problems: stale known failures, unreachable server, crashes. */
  readonly errors: readonly string[];
  readonly startedAt: string;
  readonly durationMs: number;
  /** Tail of the spawned server's output, when anything failed. */
  readonly serverOutput: string | undefined;
}

/** Version of this suite, reported so results name what certified them. */
export const SUITE_VERSION = "0.1.0";

const PROFILE_NAMES: Partial<Record<number, ProfileName>> = {
  [v1.Profile.PROFILE_CORE]: "core",
  [v1.Profile.PROFILE_IDENTITY]: "identity",
  [v1.Profile.PROFILE_PORTABILITY]: "portability",
};

class BailSignal extends Error {}

/** Runs the selected cases against the target and collects a report. */
export async function runSuite(options: SuiteOptions): Promise<SuiteReport> {
  const startedAt = new Date();
  const errors: string[] = [];
  const credentials = () => channelCredentials(options.target.security);
  const info = await fetchServerInfo(options.target.address(), credentials());
  const declaredProfiles = info.profiles.map((profile) => PROFILE_NAMES[profile]).filter((name): name is ProfileName => name !== undefined);
  const claimedProfiles = options.claimedProfiles ?? declaredProfiles;
  // Claiming what the server does not declare fails the run; declaring more than is claimed
  // only narrows what this run certifies, and is reported.
  const undeclared = claimedProfiles.filter((profile) => !declaredProfiles.includes(profile));
  const unclaimed = declaredProfiles.filter((profile) => !claimedProfiles.includes(profile));
  const mismatches = [
    ...(undeclared.length === 0 ? [] : [`claimed profiles ${undeclared.join(", ")} are not declared in ServerInfo.profiles (${declaredProfiles.join(", ") || "none"})`]),
    ...(unclaimed.length === 0 ? [] : [`declared profiles ${unclaimed.join(", ")} are not claimed for this run and were not checked`]),
  ];
  const profileMismatch = mismatches.length === 0 ? undefined : mismatches.join("; ");
  if (undeclared.length > 0) errors.push(mismatches[0]!);

  const knownIds = new Set(options.cases.map((conformanceCase) => conformanceCase.id));
  for (const id of options.knownFailures.keys()) {
    if (!knownIds.has(id)) errors.push(`known-failures names unknown case "${id}" (stale entry)`);
  }
  const first = new Set(options.first ?? []);
  for (const id of first) {
    if (!knownIds.has(id)) errors.push(`the cases to run first name unknown case "${id}"`);
  }

  const selected = options.cases.filter((conformanceCase) => options.filter === undefined || options.filter.test(conformanceCase.id));
  const view: TargetView = {
    address: () => options.target.address(),
    credentials,
    info,
    platforms: options.platforms,
    audience: options.audience ?? info.assertionAudience,
    restart: options.target.restart,
    claimedProfiles,
    oidc: options.oidc,
    spawnSibling:
      options.target.spawnSibling === undefined
        ? undefined
        : async (env) => {
            const sibling = await options.target.spawnSibling!(env);
            return { address: sibling.address(), stop: () => sibling.stop() };
          },
  };
  const bail = new AbortController();
  const results = new Map<string, CaseResult>();
  const record = (result: CaseResult): void => {
    results.set(result.id, result);
    options.onResult?.(result);
    if (options.bail && result.status === "fail") bail.abort(new BailSignal("bail"));
  };

  options.onPlan?.({ total: selected.length });
  const runnable: ConformanceCase[] = [];
  for (const conformanceCase of selected) {
    const skipReason = reasonToSkip(conformanceCase, claimedProfiles, options.target, options.oidc !== undefined);
    if (skipReason === undefined) runnable.push(conformanceCase);
    else record(baseResult(conformanceCase, options.requirements, "skip", 0, skipReason));
  }

  const runOne = async (conformanceCase: ConformanceCase): Promise<void> => {
    if (bail.signal.aborted) {
      record(baseResult(conformanceCase, options.requirements, "skip", 0, "not run: an earlier MUST failed and --bail is set"));
      return;
    }
    options.onCaseStart?.(conformanceCase.id);
    record(await runCase(conformanceCase, view, options, bail.signal));
  };

  // Each phase runs its cases beside each other, then its exclusive ones alone.
  const phases = first.size === 0 ? [runnable] : [runnable.filter((c) => first.has(c.id)), runnable.filter((c) => !first.has(c.id))];
  for (const phase of phases) {
    await runPool(phase.filter((c) => !c.exclusive), Math.max(1, options.concurrency), runOne);
    for (const conformanceCase of phase.filter((c) => c.exclusive)) await runOne(conformanceCase);
  }

  if (options.target.crashed()) errors.push("the server process exited during the run");
  const ordered = selected.map((conformanceCase) => results.get(conformanceCase.id)).filter((r): r is CaseResult => r !== undefined);
  const anyTrouble = ordered.some((r) => r.status === "fail" || r.status === "error") || errors.length > 0;
  return {
    suiteVersion: SUITE_VERSION,
    requirementsSha256: options.requirements.sha256,
    target: options.target.description,
    mode: options.target.mode,
    claimedProfiles,
    declaredProfiles,
    profileMismatch,
    implementation: info.implementation,
    results: ordered,
    errors,
    startedAt: startedAt.toISOString(),
    durationMs: Date.now() - startedAt.getTime(),
    serverOutput: anyTrouble && options.target.mode === "spawn" ? options.target.output() : undefined,
  };
}

function reasonToSkip(conformanceCase: ConformanceCase, claimed: readonly ProfileName[], target: Target, hostsOidc: boolean): string | undefined {
  if (!claimed.includes(conformanceCase.profile)) return `profile ${conformanceCase.profile} not claimed`;
  if (conformanceCase.needs.includes("restart") && target.restart === undefined) {
    return "needs the suite to restart the server (spawn mode); attach mode cannot";
  }
  if (conformanceCase.needs.includes("second-server") && target.spawnSibling === undefined) {
    return "needs the suite to start a second server (spawn mode); attach mode cannot";
  }
  if (conformanceCase.needs.includes("oidc-provider") && !hostsOidc) {
    return "needs the suite to host an OpenID provider the server trusts (spawn mode); attach mode cannot";
  }
  return undefined;
}

function baseResult(
  conformanceCase: ConformanceCase,
  requirements: RequirementSet,
  status: CaseStatus,
  durationMs: number,
  message?: string,
): CaseResult {
  return {
    id: conformanceCase.id,
    requirements: conformanceCase.requirements,
    profile: conformanceCase.profile,
    level: caseLevel(conformanceCase.requirements, requirements),
    status,
    durationMs,
    ...(message === undefined ? {} : { message }),
  };
}

async function runCase(conformanceCase: ConformanceCase, view: TargetView, options: SuiteOptions, bailSignal: AbortSignal): Promise<CaseResult> {
  const trace = createTraceLog();
  const controller = new AbortController();
  const onBail = (): void => controller.abort(bailSignal.reason);
  bailSignal.addEventListener("abort", onBail, { once: true });
  const ctx = createCaseContext(view, trace, controller.signal);
  const started = performance.now();
  const limitMs = Math.round(conformanceCase.timeoutMs * (options.timeoutScale ?? 1));
  let timer: NodeJS.Timeout | undefined;
  let outcome: { kind: "pass" } | { kind: "fail" | "error" | "bail" | "skip"; message: string };
  try {
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const failure = new ConformanceFailure(`case did not finish within ${limitMs} ms`);
        controller.abort(failure);
        reject(failure);
      }, limitMs);
    });
    await Promise.race([conformanceCase.run(ctx), timedOut]);
    outcome = { kind: "pass" };
  } catch (error) {
    outcome = classify(error, controller.signal);
  } finally {
    clearTimeout(timer);
    bailSignal.removeEventListener("abort", onBail);
    controller.abort(new Error("case finished"));
    await ctx.dispose();
  }
  const durationMs = Math.round(performance.now() - started);
  const level = caseLevel(conformanceCase.requirements, options.requirements);
  const known = options.knownFailures.get(conformanceCase.id);
  if (outcome.kind === "skip") return baseResult(conformanceCase, options.requirements, "skip", durationMs, outcome.message);
  if (outcome.kind === "bail") return baseResult(conformanceCase, options.requirements, "skip", durationMs, outcome.message);
  const evidence = [...ctx.notes];
  const withEvidence = (status: CaseStatus, message: string | undefined, withTrace: boolean): CaseResult => ({
    ...baseResult(conformanceCase, options.requirements, status, durationMs, message),
    ...(evidence.length > 0 ? { evidence } : {}),
    ...(withTrace && trace.entries.length > 0 ? { trace: formatTrace(trace) } : {}),
  });
  if (outcome.kind === "error") return withEvidence("error", outcome.message, true);
  if (outcome.kind === "pass") {
    return known === undefined ? withEvidence("pass", undefined, false) : withEvidence("unexpected-pass", `listed as a known failure (${known}) but passed`, false);
  }
  if (known !== undefined) return withEvidence("expected-fail", `${outcome.message} [known: ${known}]`, true);
  return withEvidence(level === "MUST" ? "fail" : "warn", outcome.message, true);
}

function classify(error: unknown, signal: AbortSignal): { kind: "fail" | "error" | "bail" | "skip"; message: string } {
  if (error instanceof CaseSkipped) return { kind: "skip", message: error.message };
  if (signal.aborted && signal.reason instanceof BailSignal) return { kind: "bail", message: "not finished: an earlier MUST failed and --bail is set" };
  if (error instanceof ConformanceFailure) return { kind: "fail", message: error.message };
  if (signal.aborted && signal.reason instanceof ConformanceFailure) return { kind: "fail", message: signal.reason.message };
  if (error instanceof ClientError) {
    return { kind: "fail", message: `unexpected ${Status[error.code]} from ${error.path}: ${error.details}${reasonOf(error)}` };
  }
  const text = error instanceof Error ? `${error.name}: ${error.message}\n${error.stack ?? ""}` : String(error);
  return { kind: "error", message: `harness error: ${text}` };
}

function reasonOf(error: ClientError): string {
  const extra = (error as { extra?: { $type?: string; reason?: string }[] }).extra;
  const info = extra?.find((detail) => detail.$type === "google.rpc.ErrorInfo");
  return info?.reason === undefined ? "" : ` (reason ${info.reason})`;
}

/** Runs `work` over `items`, at most `concurrency` at a time. */
export async function runPool<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await work(item);
    }
  });
  await Promise.all(workers);
}

async function fetchServerInfo(address: string, credentials: ChannelCredentials): Promise<import("@continuity/sdk/gen").continuity.v1.GetServerInfoResponse> {
  const log = createTraceLog();
  const pool = createClientPool(address, log, new AbortController().signal, credentials);
  try {
    return await pool.clients().serverInfo.getServerInfo({});
  } catch (error) {
    throw new Error(`GetServerInfo failed at ${address}: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    pool.close();
  }
}
