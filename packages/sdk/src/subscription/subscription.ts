import { Status } from "nice-grpc-common";
import type { ContinuityClient } from "../client/continuity-client.js";
import { backoffDelayMs, sleep } from "../client/backoff.js";
import { ContinuityError } from "../errors/continuity-error.js";
import type { ResetReason, SubscribeResponse } from "../gen/continuity/v1/subscription_service.js";
import type { QueueStore } from "../queue/queue-store.js";

/** What the subscription loop asks its owner to do. */
export interface SubscriptionHandlers {
  /** Apply one event. The cursor is persisted only after this resolves. */
  onEvent(message: SubscribeResponse): Promise<void>;
  /** The server could not resume the cursor (or it was unusable): re-base everything on snapshots. */
  onReset(reason: ResetReason | "INVALID_CURSOR"): Promise<void>;
  /** Connectivity changed; `true` right after `ready` or `reset`. */
  onConnected(connected: boolean): void;
  /** The subscription ended for good (device revoked, subject erased, token refused). */
  onEnded(error: ContinuityError): void;
  /** A failure the loop will retry after; for logs. */
  onRetry(error: ContinuityError, delayMs: number): void;
}

/** Options of `runSubscription`. */
export interface SubscriptionOptions {
  readonly client: ContinuityClient;
  /** `subjects/{subject}`. */
  readonly subject: string;
  readonly store: QueueStore;
  /** Store key of the cursor. */
  readonly cursorKey: string;
  /** Heartbeat interval asked of the server, in seconds. Default 15. */
  readonly heartbeatSeconds?: number | undefined;
  readonly handlers: SubscriptionHandlers;
}

/** A running subscription loop. */
export interface SubscriptionLoop {
  /** Ends the loop and waits for it. */
  stop(): Promise<void>;
}

/** Reasons after which reconnecting cannot help. */
const FINAL_REASONS = new Set(["DEVICE_REVOKED", "TOKEN_REVOKED", "TOKEN_INVALID", "SUBJECT_NOT_FOUND", "DEVICE_REQUIRED", "SCOPE_INSUFFICIENT"]);

/**
 * Keeps one subscription open for as long as it runs: applies each event, then persists its
 * cursor (so a crash replays at most the event being applied, which handlers tolerate because
 * they skip versions they already have), reconnects with backoff and full jitter, and resumes
 * from the stored cursor. A silent connection is detected by heartbeats: three missed
 * intervals abort the call and reconnect.
 *
 * Terminal statuses (design note, "Subscriptions"): GRANT_REVOKED and SUBSCRIBER_TOO_SLOW
 * resubscribe at once from the last cursor; DEVICE_REVOKED and TOKEN_REVOKED end the loop.
 * INVALID_CURSOR drops the cursor and re-bases, like a `reset`.
 */
export function runSubscription(options: SubscriptionOptions): SubscriptionLoop {
  const { client, subject, store, cursorKey, handlers } = options;
  const heartbeatSeconds = options.heartbeatSeconds ?? 15;
  const stopController = new AbortController();
  let failures = 0;

  async function once(): Promise<void> {
    const cursor = (await store.read(cursorKey)) ?? "";
    const call = new AbortController();
    const stopCall = (): void => call.abort();
    stopController.signal.addEventListener("abort", stopCall);
    let watchdog: ReturnType<typeof setTimeout> | undefined;
    let silent = false;
    const arm = (): void => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => {
        silent = true;
        call.abort();
      }, heartbeatSeconds * 3_000);
    };
    arm();
    try {
      for await (const message of client.subscriptions.subscribe(
        { parent: subject, cursor, heartbeatSeconds },
        { signal: call.signal },
      )) {
        arm();
        const event = message.event;
        if (event?.$case === "ready") {
          failures = 0;
          handlers.onConnected(true);
        } else if (event?.$case === "reset") {
          handlers.onConnected(true);
          await handlers.onReset(event.value.reason);
        } else if (event !== undefined && event.$case !== "heartbeat") {
          await handlers.onEvent(message);
        }
        if (message.cursor !== "") await store.write(cursorKey, message.cursor);
      }
    } catch (error) {
      if (silent) throw new ContinuityError({ code: Status.UNAVAILABLE, message: "The subscription went silent (no heartbeat)", cause: error });
      throw error;
    } finally {
      clearTimeout(watchdog);
      stopController.signal.removeEventListener("abort", stopCall);
    }
    // The server ended the call without a status error: treat as a transient drop.
    throw new ContinuityError({ code: Status.UNAVAILABLE, message: "The subscription ended" });
  }

  const done = (async () => {
    while (!stopController.signal.aborted) {
      try {
        await once();
      } catch (error) {
        if (stopController.signal.aborted) break;
        const failure = ContinuityError.from(error);
        handlers.onConnected(false);
        if (failure.reason !== undefined && FINAL_REASONS.has(failure.reason)) {
          handlers.onEnded(failure);
          return;
        }
        if (failure.reason === "INVALID_CURSOR") {
          await store.remove(cursorKey);
          await handlers.onReset("INVALID_CURSOR").catch(() => undefined);
          continue;
        }
        if (failure.reason === "GRANT_REVOKED" || failure.reason === "SUBSCRIBER_TOO_SLOW") {
          failures = 0;
          handlers.onRetry(failure, 0);
          continue;
        }
        if (failure.code === Status.PERMISSION_DENIED || (failure.code === Status.UNAUTHENTICATED && failure.reason !== "TOKEN_EXPIRED")) {
          handlers.onEnded(failure);
          return;
        }
        failures += 1;
        const delay = backoffDelayMs(failures, { baseDelayMs: 200, maxDelayMs: 10_000 });
        handlers.onRetry(failure, delay);
        await sleep(delay, stopController.signal).catch(() => undefined);
      }
    }
  })();

  return {
    async stop() {
      stopController.abort();
      await done;
    },
  };
}
