/** Unsubscribes the listener it was returned for. */
export type Unsubscribe = () => void;

/** A typed event source: `on` returns the function that removes the listener. */
export interface EventSource<Events extends object> {
  /** Calls `listener` for every `event` until the returned function is called. */
  on<Name extends keyof Events>(event: Name, listener: (payload: Events[Name]) => void): Unsubscribe;
}

/** The emitting side, kept internal to whoever owns the source. */
export interface Emitter<Events extends object> extends EventSource<Events> {
  emit<Name extends keyof Events>(event: Name, payload: Events[Name]): void;
  listenerCount(event: keyof Events): number;
}

/**
 * A minimal typed emitter that works in Node and browsers alike. A throwing listener must
 * not break the SDK's own bookkeeping, so its error is reported asynchronously instead.
 */
export function createEmitter<Events extends object>(): Emitter<Events> {
  const listeners = new Map<keyof Events, Set<(payload: never) => void>>();
  return {
    on(event, listener) {
      let set = listeners.get(event);
      if (set === undefined) {
        set = new Set();
        listeners.set(event, set);
      }
      set.add(listener as (payload: never) => void);
      return () => {
        set.delete(listener as (payload: never) => void);
      };
    },
    emit(event, payload) {
      for (const listener of [...(listeners.get(event) ?? [])]) {
        try {
          (listener as (payload: Events[typeof event]) => void)(payload);
        } catch (error) {
          queueMicrotask(() => {
            throw error;
          });
        }
      }
    },
    listenerCount: (event) => listeners.get(event)?.size ?? 0,
  };
}
