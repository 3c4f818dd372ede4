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
 * Counters live in the store (ReplicaStateStore.countFailure), so that servers on one store
 * count together: a caller that spreads its guesses over the replicas behind a balancer is
 * limited as one server would limit it. Rows are bounded: a counter is created only for a
 * failure the limits let through, so at most `perPlatform` account counters per platform and
 * window exist, and ended ones are swept.
 */

import type { ReplicaStateStore } from "../store/index.js";

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
  retryAfterSeconds(platformId: string, accountId: string, now: Date): Promise<number>;
  /** Counts a failed redemption against the account and its platform. */
  recordFailure(platformId: string, accountId: string, now: Date): Promise<void>;
}

export function createLinkCodeAttempts(
  store: Pick<ReplicaStateStore, "getFailureWindows" | "countFailure">,
  limits: LinkCodeAttemptLimits = LINK_CODE_ATTEMPT_LIMITS,
): LinkCodeAttempts {
  const windowMs = limits.windowSeconds * 1000;
  // JSON keeps the pair unambiguous whatever characters an account id holds; the prefix keeps
  // these keys apart from any other kind of counter the store may hold.
  const accountKey = (platformId: string, accountId: string): string => `link-code:account:${JSON.stringify([platformId, accountId])}`;
  const platformKey = (platformId: string): string => `link-code:platform:${platformId}`;

  const wait = (window: { opensAt: Date; failures: number } | undefined, limit: number, now: number): number =>
    window === undefined || window.failures < limit ? 0 : Math.max(1, Math.ceil((window.opensAt.getTime() + windowMs - now) / 1000));

  return {
    async retryAfterSeconds(platformId, accountId, now) {
      const [account, platform] = await store.getFailureWindows([accountKey(platformId, accountId), platformKey(platformId)], windowMs, now);
      const t = now.getTime();
      return Math.max(wait(account, limits.perAccount, t), wait(platform, limits.perPlatform, t));
    },
    async recordFailure(platformId, accountId, now) {
      await store.countFailure([accountKey(platformId, accountId), platformKey(platformId)], windowMs, now);
    },
  };
}
