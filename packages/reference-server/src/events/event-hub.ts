import type { Store, StoreNotification, SubjectEvent } from "../store/types.js";

/** What a live subscription receives from the hub. */
export type HubItem =
  | { readonly kind: "event"; readonly event: SubjectEvent }
  | { readonly kind: "subject-erased" }
  | { readonly kind: "account-link-deleted"; readonly platformId: string }
  | { readonly kind: "subject-moved"; readonly target: string; readonly targetSubject: string };

/**
 * In-process fan-out of committed subject events to live subscriptions.
 *
 * The hub listens to the store's post-commit notifications and hands each event to every
 * subscriber of that subject synchronously. Delivery must be O(1) and never wait: a
 * subscriber buffers in its own bounded queue (see `createBoundedQueue`) and is cut when it
 * overflows, so a slow reader can never slow down writers.
 */
export interface EventHub {
  /** Starts delivering the subject's items to `deliver`; returns the detach function. */
  attach(subjectId: string, deliver: (item: HubItem) => void): () => void;
  /** Live subscriber count, for metrics and tests. */
  readonly size: number;
  /** Stops listening to the store and detaches everyone. */
  close(): void;
}

/** Creates a hub fed by `store`'s notifications. */
export function createEventHub(store: Pick<Store, "onNotification">): EventHub {
  const bySubject = new Map<string, Set<(item: HubItem) => void>>();
  let size = 0;

  const dispatch = (notification: StoreNotification): void => {
    const subscribers = bySubject.get(notification.subjectId);
    if (subscribers === undefined) return;
    // Copy: a subscriber may detach itself while being delivered to.
    const targets = [...subscribers];
    // One item per notification (or event), handed to every subscriber: items are never
    // changed, and a subject with a thousand subscribers would otherwise allocate a thousand.
    if (notification.kind === "subject-erased") {
      const item: HubItem = { kind: "subject-erased" };
      for (const deliver of targets) deliver(item);
      return;
    }
    if (notification.kind === "subject-moved") {
      const item: HubItem = { kind: "subject-moved", target: notification.target, targetSubject: notification.targetSubject };
      for (const deliver of targets) deliver(item);
      return;
    }
    if (notification.kind === "account-link-deleted") {
      const item: HubItem = { kind: "account-link-deleted", platformId: notification.platformId };
      for (const deliver of targets) deliver(item);
      return;
    }
    for (const event of notification.events) {
      const item: HubItem = { kind: "event", event };
      for (const deliver of targets) deliver(item);
    }
  };
  const unlisten = store.onNotification(dispatch);

  return {
    attach(subjectId, deliver) {
      let set = bySubject.get(subjectId);
      if (set === undefined) {
        set = new Set();
        bySubject.set(subjectId, set);
      }
      set.add(deliver);
      size++;
      let attached = true;
      return () => {
        if (!attached) return;
        attached = false;
        size--;
        set.delete(deliver);
        if (set.size === 0 && bySubject.get(subjectId) === set) bySubject.delete(subjectId);
      };
    },
    // Stryker disable next-line BlockStatement: nothing reads size
    get size() {
      return size;
    },
    close() {
      unlisten();
      bySubject.clear();
      size = 0;
    },
  };
}
