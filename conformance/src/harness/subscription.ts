import type { continuity } from "@continuity/sdk/gen";
import type { Session } from "./context.js";
import { fail } from "./expect.js";

type SubscribeResponse = continuity.v1.SubscribeResponse;
type EventCase = NonNullable<SubscribeResponse["event"]>["$case"];

/** A live subscription read message by message, with timeouts so a silent server fails fast. */
export interface SubscriptionReader {
  /** The next message of any kind. */
  next(timeoutMs?: number): Promise<SubscribeResponse>;
  /** The next message that is not a heartbeat. */
  nextEvent(timeoutMs?: number): Promise<SubscribeResponse>;
  /** Reads events until one of `kind` arrives; fails when another non-heartbeat event comes first, unless `skipOthers`. */
  expectEvent<K extends EventCase>(kind: K, options?: { timeoutMs?: number; skipOthers?: boolean }): Promise<SubscribeResponse & { event: Extract<SubscribeResponse["event"], { $case: K }> }>;
  /** Fails if a non-heartbeat event arrives within `ms`. */
  expectQuiet(ms: number): Promise<void>;
  /** Waits for the call to end; returns the error it ended with (undefined when it ended OK). */
  ended(timeoutMs?: number): Promise<unknown>;
  pending(): SubscribeResponse[];
  /** Every message received so far, for evidence. */
  readonly received: readonly SubscribeResponse[];
  close(): void;
}

/** Opens Subscribe as `session`, starting after `cursor` (empty: now); `deliveryForm` as SubscribeRequest's (unset when undefined). */
export function openSubscription(session: Session, cursor = "", signal?: AbortSignal, heartbeatSeconds = 0, deliveryForm?: number): SubscriptionReader {
  const controller = new AbortController();
  const combined = signal === undefined ? controller.signal : AbortSignal.any([controller.signal, signal]);
  const queue: SubscribeResponse[] = [];
  const received: SubscribeResponse[] = [];
  let end: { error: unknown } | undefined;
  let endResolve: (() => void) | undefined;
  const endPromise = new Promise<void>((resolve) => {
    endResolve = resolve;
  });
  let wake: (() => void) | undefined;
  const notify = (): void => {
    wake?.();
    wake = undefined;
  };
  void (async () => {
    try {
      const request = { parent: session.subject, cursor, heartbeatSeconds, ...(deliveryForm === undefined ? {} : { deliveryForm }) };
      const call = session.clients.subscriptions.subscribe(request, { signal: combined });
      for await (const message of call) {
        queue.push(message);
        received.push(message);
        notify();
      }
      end = { error: undefined };
      endResolve?.();
    } catch (error) {
      end = { error };
    }
    endResolve?.();
    notify();
  })();

  const waitFor = async (timeoutMs: number): Promise<"message" | "end" | "timeout"> => {
    if (queue.length > 0) return "message";
    if (end !== undefined) return "end";
    let timer: NodeJS.Timeout | undefined;
    const result = await new Promise<"message" | "end" | "timeout">((resolve) => {
      wake = () => resolve(queue.length > 0 ? "message" : "end");
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    clearTimeout(timer);
    return result;
  };

  const next = async (timeoutMs = 5_000): Promise<SubscribeResponse> => {
    const state = await waitFor(timeoutMs);
    if (state === "message") return queue.shift()!;
    if (state === "end") {
      if (end?.error !== undefined) throw end.error;
      return fail("the subscription ended while a message was expected");
    }
    return fail(`no subscription message within ${timeoutMs} ms`);
  };

  const nextEvent = async (timeoutMs = 5_000): Promise<SubscribeResponse> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const message = await next(Math.max(1, deadline - Date.now()));
      if (message.event?.$case !== "heartbeat") return message;
    }
  };

  return {
    next,
    nextEvent,
    async expectEvent(kind, options = {}) {
      const deadline = Date.now() + (options.timeoutMs ?? 5_000);
      for (;;) {
        const message = await nextEvent(Math.max(1, deadline - Date.now()));
        if (message.event?.$case === kind) return message as never;
        if (!options.skipOthers) fail(`expected a ${kind} event, got ${message.event?.$case ?? "an empty message"}`);
      }
    },
    async expectQuiet(ms) {
      const deadline = Date.now() + ms;
      for (;;) {
        const remaining = deadline - Date.now();
        if (remaining <= 0) return;
        const state = await waitFor(remaining);
        if (state === "timeout") return;
        if (state === "end") return;
        const message = queue.shift()!;
        if (message.event?.$case !== "heartbeat") fail(`expected no event, got ${message.event?.$case ?? "an empty message"} (cursor ${message.cursor})`);
      }
    },
    async ended(timeoutMs = 5_000) {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), timeoutMs);
      });
      const outcome = await Promise.race([endPromise, timedOut]);
      clearTimeout(timer);
      if (outcome === "timeout" || end === undefined) return fail(`the subscription did not end within ${timeoutMs} ms`);
      return end.error;
    },
    /** Messages received but not yet read. */
    pending: () => [...queue],
    received,
    close() {
      controller.abort();
    },
  };
}

/** The cursor of "now" in `session`'s feed: the one a fresh subscription is ready at. */
export async function cursorNow(session: Session, signal?: AbortSignal): Promise<string> {
  const sub = openSubscription(session, "", signal);
  try {
    return (await sub.expectEvent("ready")).cursor;
  } finally {
    sub.close();
  }
}
