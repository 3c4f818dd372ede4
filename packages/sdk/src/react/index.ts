/**
 * `@continuity/sdk/react`: React bindings for stream handles and replicas, on
 * `useSyncExternalStore`, so a component re-renders when the state it shows changes and
 * never tears under concurrent rendering. Three hooks, no provider: open the handles where
 * the app keeps its client (a module, a context of its own) and pass them in.
 *
 * @example
 * ```tsx
 * function Lesson({ progress }: { progress: JsonStream<{ lesson?: number }> }) {
 *   const state = useStream(progress);
 *   const { pendingCount, connected } = useSyncStatus(progress);
 *   return (
 *     <p>
 *       Lesson {state.lesson ?? 1} {connected ? "" : `(offline, ${pendingCount} to send)`}
 *     </p>
 *   );
 * }
 * ```
 *
 * @packageDocumentation
 */
import { useMemo, useSyncExternalStore } from "react";
import type { JsonValue } from "../protocol/index.js";
import type { EventSource } from "../stream/emitter.js";
import type { StreamStatus } from "../stream/stream-core.js";

/** What `useStream` needs of a handle: a `JsonStream` fits. */
export interface StateSource<T> extends EventSource<{ change: unknown }> {
  /** The state to show; read again on every `change`. */
  readonly state: T;
}

/** What `useSyncStatus` needs of a handle: a `JsonStream` or `OpaqueStream` fits. */
export interface StatusSource extends EventSource<{ status: StreamStatus }> {
  /** The handle's status; read again on every `status` event. */
  readonly status: StreamStatus;
}

/** What `useConnected` needs of a replica: a `Replica` fits. */
export interface ConnectionSource extends EventSource<{ connection: { readonly connected: boolean } }> {
  /** True while the subscription is live. */
  readonly connected: boolean;
}

/**
 * The optimistic state of a JSON stream handle (`stream.state`): this device's writes at
 * once, other devices' as they arrive. Undefined while `stream` is (still being opened).
 *
 * @example
 * ```tsx
 * const state = useStream(progress); // { lesson?: number } | undefined while opening
 * ```
 */
export function useStream<T extends JsonValue>(stream: StateSource<T>): T;
export function useStream<T extends JsonValue>(stream: StateSource<T> | undefined): T | undefined;
export function useStream<T extends JsonValue>(stream: StateSource<T> | undefined): T | undefined {
  return useEventValue(stream, "change", (source) => source.state);
}

/**
 * A stream handle's sync status: `connected`, `pendingCount` (writes not yet acknowledged,
 * kept in the handle's store while offline), versions and `halted`. Undefined while `stream`
 * is.
 *
 * @example
 * ```tsx
 * const status = useSyncStatus(progress);
 * return <span>{status.connected ? "synced" : `${status.pendingCount} waiting`}</span>;
 * ```
 */
export function useSyncStatus(stream: StatusSource): StreamStatus;
export function useSyncStatus(stream: StatusSource | undefined): StreamStatus | undefined;
export function useSyncStatus(stream: StatusSource | undefined): StreamStatus | undefined {
  return useEventValue(stream, "status", (source) => source.status);
}

/**
 * Whether a replica's subscription is live. False while `replica` is undefined.
 *
 * @example
 * ```tsx
 * const online = useConnected(replica);
 * ```
 */
export function useConnected(replica: ConnectionSource | undefined): boolean {
  return useEventValue(replica, "connection", (source) => source.connected) ?? false;
}

/**
 * One event source as an external store: the value is read when the component subscribes
 * and after each `event`, and cached in between, because `useSyncExternalStore` requires
 * `getSnapshot` to return the same value until something changed (a handle's `status` is a
 * new object on every read).
 */
function useEventValue<Source extends EventSource<Record<Event, never>>, Event extends string, Value>(
  source: Source | undefined,
  event: Event,
  read: (source: Source) => Value,
): Value | undefined {
  const store = useMemo(() => {
    let current = source === undefined ? undefined : read(source);
    return {
      subscribe(onChange: () => void): () => void {
        if (source === undefined) return () => undefined;
        const off = source.on(event, () => {
          current = read(source);
          onChange();
        });
        // Whatever changed between render and subscription is not missed.
        current = read(source);
        return off;
      },
      getSnapshot: (): Value | undefined => current,
    };
    // `read` and `event` are fixed per hook; the source is what identifies the store.
  }, [source]);
  return useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
}
