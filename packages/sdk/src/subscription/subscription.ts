import { Status } from "nice-grpc-common";
import type { ContinuityClient } from "../client/continuity-client.js";
import { backoffDelayMs, sleep, type BackoffOptions } from "../client/backoff.js";
import { ContinuityError } from "../errors/continuity-error.js";
import { DeliveryForm, type ResetReason, type SubscribeResponse } from "../gen/continuity/v1/subscription_service.js";
import type { QueueStore } from "../queue/queue-store.js";
import { createDeliveryDecoder } from "./compact-delivery.js";

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
  /** `subjects/{subject}`; a function when the name can change (the subject moved to another server). */
  readonly subject: string | (() => string);
  readonly store: QueueStore;
  /** Store key of the cursor; a function when it follows the subject's name. A changed key takes the cursor along. */
  readonly cursorKey: string | (() => string);
  /** Heartbeat interval asked of the server, in seconds: 1 to 300; 0 or absent means the protocol default, 15. */
  readonly heartbeatSeconds?: number | undefined;
  readonly handlers: SubscriptionHandlers;
  /** Reconnect backoff; default 200 ms doubling up to 10 s, with full jitter. */
  readonly backoff?: BackoffOptions | undefined;
  /**
   * Ask for the compact delivery form when the server declares it (ServerInfo
   * `delivery_forms`); default true. Handlers see full messages either way.
   */
  readonly compactDelivery?: boolean | undefined;
}

/** A running subscription loop. */
export interface SubscriptionLoop {
  /** Ends the loop and waits for it. */
  stop(): Promise<void>;
}

/** The server's heartbeat interval when the client asks for 0 (subscription_service.proto). */
const DEFAULT_HEARTBEAT_SECONDS = 15;
const MAX_HEARTBEAT_SECONDS = 300;

/**
 * A connection that stays up this long counts as progress even if nothing happened on it,
 * so a quiet but healthy subject does not accumulate backoff across rare drops.
 */
const STABLE_CONNECTION_MS = 30_000;

/** How long the loop waits for ServerInfo before it subscribes in the full form. */
const SERVER_INFO_TIMEOUT_MS = 5_000;

/** Reasons after which reconnecting cannot help. */
const FINAL_REASONS = new Set([
  "DEVICE_REVOKED",
  "TOKEN_REVOKED",
  "TOKEN_INVALID",
  "SUBJECT_NOT_FOUND",
  "DEVICE_REQUIRED",
  "SCOPE_INSUFFICIENT",
  "CLIENT_CLOSED",
]);

/**
 * Keeps one subscription open for as long as it runs: applies each event, then persists its
 * cursor (so a crash replays at most the event being applied, which handlers tolerate because
 * they skip versions they already have), reconnects with backoff and full jitter, and resumes
 * from the stored cursor. A silent connection is detected by heartbeats: three missed
 * intervals abort the call and reconnect.
 *
 * Terminal statuses (design note, "Subscriptions"): GRANT_REVOKED and SUBSCRIBER_TOO_SLOW
 * resubscribe at once from the last cursor — but only once in a row: when they recur before
 * the loop made progress, they back off like any other drop, so a server that keeps refusing
 * is not hammered. DEVICE_REVOKED, TOKEN_REVOKED, INVALID_ARGUMENT and a closed client
 * (CLIENT_CLOSED) end the loop. INVALID_CURSOR drops the cursor and re-bases, like a `reset`.
 * SUBJECT_MOVED resubscribes at once when the client followed the move (the subject has a
 * new name), carrying the cursor to the new key; the new server answers it with a reset.
 * A move the client could not follow ends the loop.
 *
 * Backoff resets only on progress (an applied event, or a connection that stayed up for a
 * while), not on `ready`: a server that accepts and then drops every subscription would
 * otherwise be reconnected to as fast as it answers.
 *
 * @throws ContinuityError INVALID_ARGUMENT when `heartbeatSeconds` is outside 0..300.
 */
export function runSubscription(options: SubscriptionOptions): SubscriptionLoop {
  const { client, store, handlers } = options;
  const subjectNow = typeof options.subject === "string" ? () => options.subject as string : options.subject;
  const cursorKeyNow = typeof options.cursorKey === "string" ? () => options.cursorKey as string : options.cursorKey;
  const heartbeatSeconds = resolveHeartbeatSeconds(options.heartbeatSeconds);
  const stopController = new AbortController();
  let failures = 0;
  // Set by `once` when its connection got somewhere; read after it fails.
  let progressed = false;
  // The subject and cursor key the last subscription used.
  let subscribedAs: string | undefined;
  let cursorKey: string | undefined;
  // Whether the server at an address declared the compact form; asked once per address,
  // since a moved subject may be served by a server that does not speak it.
  let declared: { readonly address: string | undefined; readonly compact: boolean } | undefined;

  /** Whether to ask this call for the compact form: the server must have declared it. */
  async function askCompact(signal: AbortSignal): Promise<boolean> {
    if (options.compactDelivery === false) return false;
    const address = client.address;
    if (declared !== undefined && declared.address === address) return declared.compact;
    try {
      const info = await client.serverInfo.getServerInfo({}, { signal, timeoutMs: Math.min(SERVER_INFO_TIMEOUT_MS, heartbeatSeconds * 1_000) });
      declared = { address, compact: info.deliveryForms.includes(DeliveryForm.DELIVERY_FORM_COMPACT) };
      return declared.compact;
    } catch (error) {
      // A server without ServerInfo speaks no compact form; any other failure is asked again
      // next time, and this call goes ahead in the full form, which every server speaks.
      if (ContinuityError.from(error).code === Status.UNIMPLEMENTED) declared = { address, compact: false };
      return false;
    }
  }

  /**
   * The cursor key for the next subscription. After a move the key is renamed with the
   * device, and the cursor goes with it: sent to the new server it belongs to another
   * epoch, so the server answers with a reset and the replica re-bases on snapshots.
   */
  async function currentCursorKey(): Promise<string> {
    const key = cursorKeyNow();
    if (cursorKey !== undefined && cursorKey !== key) {
      const carried = await store.read(cursorKey);
      if (carried !== undefined) await store.write(key, carried);
      await store.remove(cursorKey);
    }
    cursorKey = key;
    return key;
  }

  async function once(): Promise<void> {
    const cursorKey = await currentCursorKey();
    const cursor = (await store.read(cursorKey)) ?? "";
    const subject = subjectNow();
    subscribedAs = subject;
    // Heartbeats and `ready` repeat the cursor already stored; rewriting (and syncing) it
    // for each would cost a disk write per heartbeat for nothing.
    let storedCursor = cursor;
    const call = new AbortController();
    const stopCall = (): void => call.abort();
    stopController.signal.addEventListener("abort", stopCall);
    // Stopped while reading the cursor: the listener came too late to hear it.
    if (stopController.signal.aborted) call.abort();
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
    let readyAt: number | undefined;
    try {
      const compact = await askCompact(call.signal);
      const decoder = createDeliveryDecoder(compact);
      for await (const received of client.subscriptions.subscribe(
        { parent: subject, cursor, heartbeatSeconds, ...(compact ? { deliveryForm: DeliveryForm.DELIVERY_FORM_COMPACT } : {}) },
        { signal: call.signal },
      )) {
        arm();
        const message = decoder.decode(received);
        const event = message.event;
        if (event?.$case === "ready") {
          readyAt = Date.now();
          handlers.onConnected(true);
        } else if (event?.$case === "reset") {
          handlers.onConnected(true);
          await handlers.onReset(event.value.reason);
        } else if (event !== undefined && event.$case !== "heartbeat") {
          await handlers.onEvent(message);
          progressed = true;
        }
        if (message.cursor !== "" && message.cursor !== storedCursor) {
          await store.write(cursorKey, message.cursor);
          storedCursor = message.cursor;
        }
      }
    } catch (error) {
      if (silent) throw new ContinuityError({ code: Status.UNAVAILABLE, message: "The subscription went silent (no heartbeat)", cause: error });
      throw error;
    } finally {
      if (readyAt !== undefined && Date.now() - readyAt >= STABLE_CONNECTION_MS) progressed = true;
      clearTimeout(watchdog);
      stopController.signal.removeEventListener("abort", stopCall);
    }
    // The server ended the call without a status error: treat as a transient drop.
    throw new ContinuityError({ code: Status.UNAVAILABLE, message: "The subscription ended" });
  }

  const done = (async () => {
    while (!stopController.signal.aborted) {
      progressed = false;
      try {
        await once();
      } catch (error) {
        if (stopController.signal.aborted) break;
        if (progressed) failures = 0;
        const failure = ContinuityError.from(error);
        handlers.onConnected(false);
        if (failure.reason !== undefined && FINAL_REASONS.has(failure.reason)) {
          handlers.onEnded(failure);
          return;
        }
        if (failure.reason === "SUBJECT_MOVED") {
          // The client followed the move before this error got here, unless it could not
          // (no target it may dial): then there is nowhere to resubscribe.
          if (subjectNow() !== subscribedAs) {
            handlers.onRetry(failure, 0);
            continue;
          }
          handlers.onEnded(failure);
          return;
        }
        if (failure.reason === "INVALID_CURSOR") {
          await store.remove(await currentCursorKey());
          await handlers.onReset("INVALID_CURSOR").catch(() => undefined);
          continue;
        }
        // The first such drop is the server asking for a fresh subscription; the same drop
        // again without progress means resubscribing is not helping, so it backs off below.
        if ((failure.reason === "GRANT_REVOKED" || failure.reason === "SUBSCRIBER_TOO_SLOW") && failures === 0) {
          failures = 1;
          handlers.onRetry(failure, 0);
          continue;
        }
        // Our own request was refused (e.g. a heartbeat interval the server does not
        // accept): repeating the same request would be refused the same way forever.
        if (failure.code === Status.INVALID_ARGUMENT) {
          handlers.onEnded(failure);
          return;
        }
        if (
          (failure.code === Status.PERMISSION_DENIED && failure.reason !== "GRANT_REVOKED") ||
          (failure.code === Status.UNAUTHENTICATED && failure.reason !== "TOKEN_EXPIRED")
        ) {
          handlers.onEnded(failure);
          return;
        }
        failures += 1;
        const delay = backoffDelayMs(failures, { baseDelayMs: 200, maxDelayMs: 10_000, ...options.backoff });
        handlers.onRetry(failure, delay);
        // Closing the client ends the wait too: the next attempt then fails with CLIENT_CLOSED.
        await sleep(delay, AbortSignal.any([stopController.signal, client.closeSignal])).catch(() => undefined);
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

function resolveHeartbeatSeconds(requested: number | undefined): number {
  if (requested === undefined || requested === 0) return DEFAULT_HEARTBEAT_SECONDS;
  if (!Number.isInteger(requested) || requested < 1 || requested > MAX_HEARTBEAT_SECONDS) {
    throw new ContinuityError({
      code: Status.INVALID_ARGUMENT,
      message: `heartbeatSeconds must be an integer from 1 to ${MAX_HEARTBEAT_SECONDS} (0 for the default of ${DEFAULT_HEARTBEAT_SECONDS}); got ${requested}`,
    });
  }
  return requested;
}
