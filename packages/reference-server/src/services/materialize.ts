import { canonicalJson, materializeJsonState, parseJsonDocument, type JsonDeltaOptions, type JsonValue } from "@continuity/sdk/protocol";
import type { ServerLimits } from "./deps.js";
import type { StateBase, Store, StreamRecord, VersionCheck } from "../store/types.js";
import { Encoding } from "../store/types.js";

/**
 * Server-side materialization of JSON streams: the nearest stored state at or below a
 * version plus the deltas after it. Shared by snapshots, compaction, retention and restore,
 * so every path computes the same bytes the snapshot hash commits to.
 */

/**
 * The bounds every server-side application of a JSON delta runs under: the state is bounded
 * like a snapshot (LIMIT-020), and the values a delta copies count like its own bytes
 * (LIMIT-021). Appends and imports both apply them, so no path can grow a state past them.
 */
export function jsonBounds(limits: ServerLimits): JsonDeltaOptions {
  return { maxStateBytes: limits.maxSnapshotBytes, maxCopyBytes: limits.maxDeltaBytes };
}

/** Applies a state base's deltas to its base state. */
export function applyStateBase(base: StateBase): JsonValue {
  const start = parseJsonDocument(base.baseState);
  if (base.deltas.length === 0) return start;
  return materializeJsonState(
    start,
    base.stream.encoding,
    base.deltas.map((d) => d.payload),
  );
}

/** The state of a JSON stream at a retained version, with the chain hash there. */
export async function materializeJson(
  store: Store,
  stream: StreamRecord,
  version: number,
): Promise<{ state: JsonValue; bytes: Uint8Array; headHash: Uint8Array } | VersionCheck> {
  if (stream.encoding === Encoding.Opaque) throw new TypeError("opaque streams are not materialized by the server");
  const base = await store.loadStateBase(stream.subjectId, stream.id, version);
  if (!("baseState" in base)) return base;
  const state = applyStateBase(base);
  const lastDelta = base.deltas[base.deltas.length - 1];
  const headHash = lastDelta !== undefined ? lastDelta.hash : await store.hashAtVersion(stream.subjectId, stream.id, version);
  if (!(headHash instanceof Uint8Array)) return headHash;
  return { state, bytes: canonicalJson(state), headHash };
}
