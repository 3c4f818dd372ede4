import { bytesEqual, canonicalJson, editJsonState, toHex, type JsonStateEditor, type JsonValue } from "@continuity/sdk/protocol";
import type { AppendHead, AppendInput, AppendResult, StateLag, Store, StreamRecord, VersionCheck } from "../store/types.js";
import { Encoding } from "../store/types.js";
import { canonicalJsonSliced, parseCanonicalSliced } from "./sliced-json.js";

/**
 * The head states of JSON streams, held in memory so that an append costs what it touches.
 *
 * Each held head is the state at one (stream uid, version, chain hash). The chain hash commits
 * to every delta up to that version, so a held head is right for a stream exactly when the
 * store's head has the same version and hash, whoever wrote it: another replica on the same
 * database, an import, a restore, or an append of this process that was rolled back after its
 * batch was applied (the held head then names a version the store does not have, and is
 * reloaded). Appends apply their batch to the held head inside the store's transaction
 * (`at` + `advanced`); `ensure` before the append catches a held head up with the deltas it
 * lacks, or loads it from the newest stored state.
 *
 * Stored states follow a declared rule (`isStateDue`): the store writes none per append; after
 * a commit that makes one due, the state at that version is materialized in slices and stored
 * in the background (`afterCommit`). Everything proportional to a whole state (parsing a stored
 * state, canonical bytes for GetSnapshot or for storing) runs in slices (`sliced-json.ts`).
 */

/** A full state is stored after at most this many deltas since the last stored one. */
export const STATE_EVERY_DELTAS = 4096;
/** ... or once the deltas since then carry as many payload bytes as the state (at least this). */
export const STATE_MIN_LAG_BYTES = 1024 * 1024;

/**
 * The storage rule: a state is due when the deltas since the newest stored state number
 * {@link STATE_EVERY_DELTAS}, or their payloads reach the state's own size (and at least
 * {@link STATE_MIN_LAG_BYTES}). Replaying from a stored state so costs at most about one
 * state's worth of bytes and 4,096 deltas, and stored states add at most about
 * max(payload, state / 4,096) bytes of disk per delta.
 */
export function isStateDue(lag: StateLag, headVersion: number, stateBytes: number): boolean {
  return headVersion - lag.version >= STATE_EVERY_DELTAS || lag.bytes >= Math.max(stateBytes, STATE_MIN_LAG_BYTES);
}

/**
 * The canonical bytes of an editor's state, whose length the editor knows: wide objects' names
 * come from their indexes (member-names.ts), and a length that differs would mean a name
 * missing from one, so the bytes are then written again from `Object.keys`.
 */
async function canonicalBytesOf(editor: JsonStateEditor): Promise<Uint8Array> {
  const bytes = await canonicalJsonSliced(editor.state);
  return bytes.length === editor.size ? bytes : canonicalJsonSliced(editor.state, "listed");
}

/** A head held for appends. */
export interface HeldHead {
  readonly subjectId: string;
  readonly streamId: string;
  readonly uid: string;
  readonly encoding: StreamRecord["encoding"];
  version: number;
  hash: Uint8Array;
  readonly editor: JsonStateEditor;
  /** Canonical bytes at `version`, once something needed them. */
  bytes: Uint8Array | undefined;
  /** What this entry counts against the cache bound. */
  weight: number;
}

/** See the module comment. */
export interface JsonHeads {
  /** Makes the head of `stream` (as just read) held, catching up or loading as needed. */
  ensure(stream: StreamRecord): Promise<void>;
  /** The held head at exactly `stream`'s head, if there is one. */
  at(stream: StreamRecord): HeldHead | undefined;
  /** Records that a batch was applied to `held`, which is now at `version` / `hash`. */
  advanced(held: HeldHead, version: number, hash: Uint8Array): void;
  /**
   * Instead of applying a batch to `held`: its stream's head is now `state`, whose canonical
   * bytes are `bytes`, at `version` / `hash`. For a restore whose compensating delta is large,
   * whose result (the checkpoint's state) it already has in hand: applying that delta would be
   * one step the size of the state. `state` becomes the held head, edited in place by later
   * appends, so the caller must hold no other reference to it.
   */
  replaced(held: HeldHead, state: JsonValue, bytes: Uint8Array, version: number, hash: Uint8Array): void;
  /** Canonical state bytes of a JSON stream at a retained version, with the chain hash there. */
  canonicalBytes(stream: StreamRecord, version: number): Promise<{ bytes: Uint8Array; headHash: Uint8Array } | VersionCheck>;
  /**
   * The state of a JSON stream at a retained version as a value of the caller's own (no held
   * head shares it), with the chain hash there and the size of its canonical JSON; built in
   * slices from the stored state.
   */
  stateAt(stream: StreamRecord, version: number): Promise<{ state: JsonValue; headHash: Uint8Array; size: number } | VersionCheck>;
  /**
   * After a commit that moved `stream` to `version`/`hash`: stores the state there in the
   * background when the rule makes it due (`lag` as the append read it, `addedBytes` the
   * batch's payload bytes, `stateBytes` the state's size after it).
   */
  afterCommit(stream: StreamRecord, version: number, hash: Uint8Array, lag: StateLag, addedBytes: number, stateBytes: number): void;
  /** Resolves when no background store is running (tests, shutdown). */
  idle(): Promise<void>;
  close(): void;
}

/**
 * Held heads up to this size are serialized at once (a few milliseconds); larger ones are
 * materialized apart from the held head, in slices, since appends may edit the held head
 * while a sliced serialization of it would still be reading it.
 */
const SERIALIZE_AT_ONCE_BYTES = 1024 * 1024;

/** Deltas a held head is caught up with in one go before a reload is cheaper. */
const CATCH_UP_DELTAS = 1024;

/**
 * @param maxHeldBytes bound on the canonical bytes of held heads and cached state bytes
 *   together; at least one state of `max_snapshot_bytes` must fit, or appends to such a state
 *   would reload it every time.
 */
export function createJsonHeads(store: Store, maxHeldBytes: number): JsonHeads {
  const held = new Map<string, HeldHead>();
  /** Canonical bytes of versions other than a held head's, least recently used first. */
  const versionBytes = new Map<string, Uint8Array>();
  let heldWeight = 0;
  let versionWeight = 0;
  const loads = new Map<string, Promise<void>>();
  const materializing = new Map<string, Promise<{ bytes: Uint8Array; headHash: Uint8Array } | VersionCheck>>();
  const jobs = new Map<string, Promise<void>>();
  let closed = false;

  const keyOf = (subjectId: string, streamId: string) => `${subjectId}\0${streamId}`;
  const versionKey = (uid: string, version: number, hash: Uint8Array) => `${uid}\0${version}\0${toHex(hash)}`;
  // Not a type guard: a held head that does not match is still held, at another version.
  const matches = (entry: HeldHead | undefined, stream: StreamRecord): boolean =>
    entry !== undefined && entry.uid === stream.uid && entry.version === stream.headVersion && bytesEqual(entry.hash, stream.headHash);

  const reweigh = (entry: HeldHead): void => {
    const weight = entry.editor.size + (entry.bytes?.length ?? 0);
    heldWeight += weight - entry.weight;
    entry.weight = weight;
  };
  const forget = (key: string): void => {
    const entry = held.get(key);
    if (entry === undefined) return;
    held.delete(key);
    heldWeight -= entry.weight;
  };
  const evict = (keep: string | undefined): void => {
    while (versionWeight > 0 && heldWeight + versionWeight > maxHeldBytes) {
      const [key, bytes] = versionBytes.entries().next().value!;
      versionBytes.delete(key);
      versionWeight -= bytes.length;
    }
    for (const key of held.keys()) {
      if (heldWeight <= maxHeldBytes) break;
      if (key !== keep) forget(key);
    }
  };
  const install = (entry: HeldHead): void => {
    const key = keyOf(entry.subjectId, entry.streamId);
    forget(key);
    held.set(key, entry);
    heldWeight += entry.weight;
    evict(key);
  };
  const touch = (key: string, entry: HeldHead): void => {
    held.delete(key);
    held.set(key, entry);
  };

  // Erased subjects and deleted streams leave nothing behind in memory.
  const unsubscribe = store.onNotification((notification) => {
    if (notification.kind === "subject-erased" || notification.kind === "subject-moved") {
      const prefix = keyOf(notification.subjectId, "");
      for (const key of [...held.keys()]) if (key.startsWith(prefix)) forget(key);
      versionBytes.clear();
      versionWeight = 0;
    } else if (notification.kind === "events") {
      for (const event of notification.events) {
        if (event.body.kind === "stream-deleted") forget(keyOf(notification.subjectId, event.body.stream.id));
      }
    }
  });

  type Materialized =
    | { readonly bytes: Uint8Array; readonly headHash: Uint8Array; readonly editor: undefined; readonly atHead: boolean }
    | { readonly bytes: undefined; readonly headHash: Uint8Array; readonly editor: JsonStateEditor; readonly atHead: boolean };

  /** The state at a retained version, from the newest stored state at or below it. */
  const materialize = async (stream: StreamRecord, version: number): Promise<Materialized | VersionCheck> => {
    const base = await store.loadStateBase(stream.subjectId, stream.id, version);
    if (!("baseState" in base)) return base;
    if (base.deltas.length === 0) {
      const headHash =
        version === base.stream.headVersion ? base.stream.headHash : await store.hashAtVersion(stream.subjectId, stream.id, version);
      if (!(headHash instanceof Uint8Array)) return headHash;
      return { bytes: base.baseState, headHash, editor: undefined, atHead: version === base.stream.headVersion };
    }
    const editor = editJsonState(await parseCanonicalSliced(base.baseState), base.baseState.length);
    let deadline = performance.now() + 8;
    for (const delta of base.deltas) {
      editor.apply(stream.encoding, [delta.payload]);
      if (performance.now() > deadline) {
        await new Promise((resolve) => setImmediate(resolve));
        deadline = performance.now() + 8;
      }
    }
    return { bytes: undefined, editor, headHash: base.deltas[base.deltas.length - 1]!.hash, atHead: version === base.stream.headVersion };
  };

  const load = async (stream: StreamRecord): Promise<void> => {
    const result = await materialize(stream, stream.headVersion);
    if (!("headHash" in result)) return;
    const editor = result.editor ?? editJsonState(await parseCanonicalSliced(result.bytes), result.bytes.length);
    const bytes = result.bytes;
    install({
      subjectId: stream.subjectId,
      streamId: stream.id,
      uid: stream.uid,
      encoding: stream.encoding,
      version: stream.headVersion,
      hash: result.headHash,
      editor,
      bytes,
      weight: editor.size + (bytes?.length ?? 0),
    });
  };

  const catchUp = async (key: string, entry: HeldHead, stream: StreamRecord): Promise<boolean> => {
    const from = entry.version;
    const fromHash = entry.hash;
    const deltas = await store.listDeltas(stream.subjectId, stream.id, from, stream.headVersion - from);
    // An append may have moved the held head meanwhile; then this catch-up is not needed.
    if (held.get(key) !== entry || entry.version !== from) return true;
    if (deltas.length === 0 || !bytesEqual(deltas[0]!.prevHash, fromHash)) return false;
    if (deltas.some((d, i) => d.version !== from + i + 1)) return false;
    try {
      entry.editor.apply(stream.encoding, deltas.map((d) => d.payload));
    } catch {
      return false;
    }
    const last = deltas[deltas.length - 1]!;
    api.advanced(entry, last.version, last.hash);
    return true;
  };

  const api: JsonHeads = {
    async ensure(stream) {
      if (stream.encoding === Encoding.Opaque) return;
      const key = keyOf(stream.subjectId, stream.id);
      const entry = held.get(key);
      if (matches(entry, stream)) {
        touch(key, entry!);
        return;
      }
      if (
        entry !== undefined &&
        entry.uid === stream.uid &&
        entry.version < stream.headVersion &&
        stream.headVersion - entry.version <= CATCH_UP_DELTAS &&
        (await catchUp(key, entry, stream))
      ) {
        return;
      }
      const loadKey = `${key}\0${stream.headVersion}`;
      let pending = loads.get(loadKey);
      if (pending === undefined) {
        pending = load(stream).finally(() => loads.delete(loadKey));
        loads.set(loadKey, pending);
      }
      await pending;
    },

    at(stream) {
      const entry = held.get(keyOf(stream.subjectId, stream.id));
      return matches(entry, stream) ? entry : undefined;
    },

    advanced(entry, version, hash) {
      entry.version = version;
      entry.hash = hash;
      entry.bytes = undefined;
      reweigh(entry);
      evict(keyOf(entry.subjectId, entry.streamId));
    },

    replaced(entry, state, bytes, version, hash) {
      install({
        subjectId: entry.subjectId,
        streamId: entry.streamId,
        uid: entry.uid,
        encoding: entry.encoding,
        version,
        hash,
        editor: editJsonState(state, bytes.length),
        bytes,
        weight: 2 * bytes.length,
      });
    },

    async canonicalBytes(stream, version) {
      const key = keyOf(stream.subjectId, stream.id);
      const entry = held.get(key);
      if (version === stream.headVersion && matches(entry, stream)) {
        const head = entry!;
        if (head.bytes === undefined && head.editor.size <= SERIALIZE_AT_ONCE_BYTES) {
          // Small enough to write in one go from the held head, before any append can edit it.
          head.bytes = canonicalJson(head.editor.state);
          reweigh(head);
          evict(key);
        }
        if (head.bytes !== undefined) return { bytes: head.bytes, headHash: head.hash };
      }
      const hashKnown = version === stream.headVersion ? stream.headHash : undefined;
      if (hashKnown !== undefined) {
        const cached = versionBytes.get(versionKey(stream.uid, version, hashKnown));
        if (cached !== undefined) return { bytes: cached, headHash: hashKnown };
      }
      const jobKey = `${key}\0${stream.uid}\0${version}`;
      let pending = materializing.get(jobKey);
      if (pending === undefined) {
        pending = (async () => {
          const result = await materialize(stream, version);
          if (!("headHash" in result)) return result;
          const bytes = result.editor === undefined ? result.bytes : await canonicalBytesOf(result.editor);
          const now = held.get(key);
          if (now !== undefined && now.uid === stream.uid && now.version === version && bytesEqual(now.hash, result.headHash)) {
            now.bytes = bytes;
            reweigh(now);
          } else if (result.editor !== undefined && result.atHead && now === undefined) {
            // The state at the head, with nothing held for the stream: hold it for appends.
            install({
              subjectId: stream.subjectId,
              streamId: stream.id,
              uid: stream.uid,
              encoding: stream.encoding,
              version,
              hash: result.headHash,
              editor: result.editor,
              bytes,
              weight: result.editor.size + bytes.length,
            });
          } else if (bytes.length <= maxHeldBytes / 4) {
            const vkey = versionKey(stream.uid, version, result.headHash);
            if (!versionBytes.has(vkey)) {
              versionBytes.set(vkey, bytes);
              versionWeight += bytes.length;
            }
          }
          evict(key);
          return { bytes, headHash: result.headHash };
        })().finally(() => materializing.delete(jobKey));
        materializing.set(jobKey, pending);
      }
      return pending;
    },

    async stateAt(stream, version) {
      const result = await materialize(stream, version);
      if (!("headHash" in result)) return result;
      // A fresh editor's state, or bytes parsed anew: never the held head itself.
      return result.editor === undefined
        ? { state: await parseCanonicalSliced(result.bytes), headHash: result.headHash, size: result.bytes.length }
        : { state: result.editor.state, headHash: result.headHash, size: result.editor.size };
    },

    afterCommit(stream, version, hash, lag, addedBytes, stateBytes) {
      if (closed || !isStateDue({ version: lag.version, bytes: lag.bytes + addedBytes }, version, stateBytes)) return;
      const key = keyOf(stream.subjectId, stream.id);
      if (jobs.has(key)) return;
      const at: StreamRecord = { ...stream, headVersion: version, headHash: hash };
      const job = (async () => {
        const result = await api.canonicalBytes(at, version);
        if (!("bytes" in result) || closed) return;
        await store.putJsonState({ subjectId: stream.subjectId, streamId: stream.id, streamUid: stream.uid, version, state: result.bytes });
      })()
        // A state that could not be stored is due again at the next append.
        .catch(() => undefined)
        .finally(() => jobs.delete(key));
      jobs.set(key, job);
    },

    async idle() {
      while (jobs.size > 0) await Promise.all(jobs.values());
    },

    close() {
      closed = true;
      unsubscribe();
      held.clear();
      versionBytes.clear();
      heldWeight = 0;
      versionWeight = 0;
    },
  };
  return api;
}

/**
 * Appends on the head state held in memory (`json-heads.ts`): held before the store's
 * transaction starts, so that building the batch inside it costs what the batch touches.
 * When the head moved between (another replica, an import), the build refuses with
 * {@link StaleHead} and nothing is written; the held head catches up and the append is tried
 * again, with the same exactly-once decisions.
 */
export async function appendOnHeldHead(store: Store, jsonHeads: JsonHeads, stream: StreamRecord, input: AppendInput): Promise<AppendResult> {
  if (stream.encoding === Encoding.Opaque) return store.appendBatch(input);
  let current = stream;
  for (let attempt = 1; ; attempt++) {
    await jsonHeads.ensure(current);
    let built: { head: AppendHead; bytes: number; size: number } | undefined;
    const result = await store.appendBatch({
      ...input,
      build: (head) => {
        const batch = input.build(head);
        const last = batch.deltas[batch.deltas.length - 1];
        // The build advanced the held head to the batch's last delta.
        const after = last === undefined ? undefined : jsonHeads.at({ ...head.stream, headVersion: head.stream.headVersion + batch.deltas.length, headHash: last.hash });
        built = { head, bytes: batch.deltas.reduce((sum, d) => sum + d.payload.length, 0), size: after?.editor.size ?? 0 };
        return batch;
      },
    });
    if (result.kind === "committed" && built !== undefined) {
      jsonHeads.afterCommit(built.head.stream, result.outcome.headVersion, result.outcome.headHash, built.head.stateLag, built.bytes, built.size);
    }
    if (!(result.kind === "rejected" && result.error instanceof StaleHead) || attempt >= MAX_STALE_ATTEMPTS) return result;
    const now = await store.getStream(stream.subjectId, stream.id);
    if (now === undefined || now.uid !== stream.uid) return { kind: "stream-not-found" };
    current = now;
  }
}

/** How often an append is tried again when its held head turned out stale. */
const MAX_STALE_ATTEMPTS = 20;

/**
 * Thrown by a build whose held head is not the store's head (the stream moved since it was
 * held): the append writes nothing and is tried again on a head caught up.
 */
export class StaleHead extends Error {
  constructor() {
    super("the held head state is not the stream's head");
  }
}
