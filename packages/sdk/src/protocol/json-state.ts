/**
 * A JSON state edited in place, with its canonical size kept exactly as it changes: what a
 * server that holds a stream's head in memory needs so that one append costs what the append
 * touches, not what the whole state weighs. `materializeJsonState` copies the state, measures
 * it and leaves it untouched; this editor reaches the same state and the same verdicts
 * (errors, LIMIT-020/021 bounds) by changing the state it holds and undoing an application
 * that fails, so nothing is copied but the values a patch inserts.
 *
 * Work per application: the patch's own size, the values it inserts, replaces or removes
 * (measured to keep the size exact), the depth of inserted values, and the array items that
 * insertions and removals by index shift (bounded by `maxShiftedItems`, as moves to deeper
 * places are by `maxDeeperMoveBytes`). A member count is
 * taken once per object the first time it is edited; a wide object's member names are kept in
 * step with it (member-names.ts), so that its count and names never need `Object.keys` again.
 */
import { DeltaEncoding } from "../gen/continuity/v1/types.js";
import { PatchNotApplicableError } from "./errors.js";
import {
  arrayIndex,
  canonicalSize,
  checkPatchDocument,
  createWorkBudget,
  formatPointer,
  parseOperations,
  requireJsonEncoding,
  resolve,
  type Fail,
  type JsonDeltaOptions,
  type Operation,
} from "./json-delta.js";
import { memberNameIndex, recordMemberNames, WIDE_OBJECT_MEMBERS } from "./member-names.js";
import { cloneJson, defineMember, isJsonObject, jsonDepth, jsonEquals, MAX_JSON_DEPTH, parseJsonDocument, type JsonObject, type JsonValue } from "./json.js";

/** A state held for editing, see {@link editJsonState}. */
export interface JsonStateEditor {
  /** The current state. It belongs to the editor: read it, never change it. */
  readonly state: JsonValue;
  /** `canonicalSize(state)`, kept exactly. */
  readonly size: number;
  /**
   * Applies `patches` in order, all or none: when one fails, the state and size are as they
   * were before the call and the error is thrown as `materializeJsonState` throws it.
   */
  apply(encoding: DeltaEncoding, patches: Iterable<JsonValue | Uint8Array>, options?: JsonDeltaOptions): void;
  /**
   * `apply` of several appends' patches at once, all or none, with the bounds of `options`
   * that count what a call asks for (copies, moves to deeper places, shifted items) counted
   * afresh for each group, as each append was judged: how an importer applies a run of deltas
   * that were appended in several batches. So that one call costs at most about two groups'
   * bounds, it stops before a group once the groups applied have together used more than one
   * group's bound of any of those; it returns how many groups it applied (all of them, or at
   * least one when any are given), and the caller applies the rest in a call of its own.
   */
  applyGroups(encoding: DeltaEncoding, groups: Iterable<Iterable<JsonValue | Uint8Array>>, options?: JsonDeltaOptions): number;
}

/**
 * Takes `state` (whose canonical size is `size`) for editing in place. The caller hands the
 * state over: it must not keep or change it.
 */
export function editJsonState(state: JsonValue, size: number): JsonStateEditor {
  let root = state;
  let total = size;
  // Member counts of edited objects, taken when first needed: whether an object is empty
  // decides a comma, and counting a large object's keys on every edit would cost its size. A
  // wide object's count is the size of its name index (member-names.ts), which is made here
  // when the object first becomes wide, or was made by the parser that built it.
  const counts = new WeakMap<JsonObject, number>();
  const countOf = (object: JsonObject): number => {
    const names = memberNameIndex(object);
    if (names !== undefined) return names.size;
    let count = counts.get(object);
    if (count === undefined) {
      const keys = Object.keys(object);
      count = keys.length;
      if (count > WIDE_OBJECT_MEMBERS) recordMemberNames(object, new Set(keys));
      else counts.set(object, count);
    }
    return count;
  };
  /** After `key` was added to `object`, which had `count` members before. */
  const added = (object: JsonObject, key: string, count: number): void => {
    const names = memberNameIndex(object);
    if (names !== undefined) names.add(key);
    // The name that makes the object wide: a list of a few thousand names, taken once.
    else if (count + 1 > WIDE_OBJECT_MEMBERS) recordMemberNames(object, new Set(Object.keys(object)));
    else counts.set(object, count + 1);
  };
  /** After `key` was removed from `object`, which had `count` members before. */
  const removed = (object: JsonObject, key: string, count: number): void => {
    const names = memberNameIndex(object);
    if (names !== undefined) names.delete(key);
    else counts.set(object, count - 1);
  };

  return {
    get state() {
      return root;
    },
    get size() {
      return total;
    },
    apply(encoding, patches, options) {
      applyGroups(encoding, [patches], options);
    },
    applyGroups,
  };

  function applyGroups(encoding: DeltaEncoding, groups: Iterable<Iterable<JsonValue | Uint8Array>>, options?: JsonDeltaOptions): number {
    const jsonEncoding = requireJsonEncoding(encoding);
    const maxState = options?.maxStateBytes ?? Infinity;
    const work = createWorkBudget(options);
    const undo: (() => void)[] = [];
    const startRoot = root;
    const startSize = total;

    // --- edits that keep `total` exact and log their inverse ---------------------------------

    const setMember = (object: JsonObject, key: string, value: JsonValue, valueSize: number): void => {
      if (Object.hasOwn(object, key)) {
        const old = object[key]!;
        total += valueSize - canonicalSize(old);
        defineMember(object, key, value);
        undo.push(() => defineMember(object, key, old));
      } else {
        const count = countOf(object);
        // The member name, its colon and (unless it is the first) a comma.
        total += (count === 0 ? 1 : 2) + canonicalSize(key) + valueSize;
        defineMember(object, key, value);
        added(object, key, count);
        undo.push(() => {
          delete object[key];
          removed(object, key, count + 1);
        });
      }
    };
    const deleteMember = (object: JsonObject, key: string, valueSize: number): JsonValue => {
      const old = object[key]!;
      const count = countOf(object);
      total -= (count === 1 ? 1 : 2) + canonicalSize(key) + valueSize;
      delete object[key];
      removed(object, key, count);
      undo.push(() => {
        defineMember(object, key, old);
        added(object, key, count - 1);
      });
      return old;
    };
    const insertItem = (array: JsonValue[], index: number, value: JsonValue, valueSize: number, fail: Fail): void => {
      work.shift(array.length - index, fail);
      total += (array.length === 0 ? 0 : 1) + valueSize;
      array.splice(index, 0, value);
      undo.push(() => array.splice(index, 1));
    };
    const replaceItem = (array: JsonValue[], index: number, value: JsonValue, valueSize: number): void => {
      const old = array[index]!;
      total += valueSize - canonicalSize(old);
      array[index] = value;
      undo.push(() => {
        array[index] = old;
      });
    };
    const removeItem = (array: JsonValue[], index: number, valueSize: number, fail: Fail): JsonValue => {
      work.shift(array.length - index - 1, fail);
      const old = array[index]!;
      total -= (array.length === 1 ? 0 : 1) + valueSize;
      array.splice(index, 1);
      undo.push(() => array.splice(index, 0, old));
      return old;
    };
    const setRoot = (value: JsonValue, valueSize: number): void => {
      // The old root is restored whole by a failed call, so this needs no undo of its own.
      root = value;
      total = valueSize;
    };

    // --- RFC 6902, in the order `applyOperations` judges -------------------------------------

    const tooLarge = (fail: Fail, message: string) => fail("state-too-large", message);
    /** The whole-value check `materializeJsonState` makes before copying a value in. */
    const sizeToInsert = (value: JsonValue, fail: Fail): number => {
      const size = canonicalSize(value, maxState);
      if (size > maxState) throw tooLarge(fail, `the value alone is larger than ${maxState} bytes of canonical JSON`);
      return size;
    };
    const checkDepth = (path: readonly string[], value: JsonValue, fail: Fail): void => {
      if (path.length + jsonDepth(value) > MAX_JSON_DEPTH) throw fail("too-deep", `the result would nest deeper than ${MAX_JSON_DEPTH} levels`);
    };
    /**
     * `addValue`; `valueSize` undefined means "the value's size cancels out" (a move), and
     * `nestingChecked` that it goes no deeper than it was (so it fits, as `addValue` says).
     */
    const addAt = (path: readonly string[], value: JsonValue, valueSize: number | undefined, fail: Fail, nestingChecked = false): void => {
      if (path.length === 0) {
        setRoot(value, valueSize ?? canonicalSize(value));
        return;
      }
      if (!nestingChecked) checkDepth(path, value, fail);
      const parent = resolve(root, path.slice(0, -1), fail);
      const token = path.at(-1)!;
      if (Array.isArray(parent)) {
        const index = token === "-" ? parent.length : arrayIndex(token, parent.length, fail);
        insertItem(parent, index, value, valueSize ?? 0, fail);
      } else if (isJsonObject(parent)) {
        setMember(parent, token, value, valueSize ?? 0);
      } else {
        throw fail("not-a-container", `the parent is a ${parent === null ? "null" : typeof parent}`);
      }
    };
    const removeAt = (path: readonly string[], fail: Fail, measure: boolean): JsonValue => {
      const value = resolve(root, path, fail);
      const parent = resolve(root, path.slice(0, -1), fail);
      const token = path.at(-1)!;
      const size = measure ? canonicalSize(value) : 0;
      return Array.isArray(parent) ? removeItem(parent, Number(token), size, fail) : deleteMember(parent as JsonObject, token, size);
    };
    const settle = (fail: Fail | undefined): void => {
      if (total <= maxState) return;
      const message = `the state would be larger than ${maxState} bytes of canonical JSON`;
      throw fail === undefined ? new PatchNotApplicableError("state-too-large", message) : fail("state-too-large", message);
    };

    const applyOperation = (operation: Operation, index: number): void => {
      const fail: Fail = (reason, message) =>
        new PatchNotApplicableError(reason, `operation ${index} (${operation.op} ${formatPointer(operation.path)}): ${message}`, {
          operationIndex: index,
        });
      switch (operation.op) {
        case "add": {
          const size = sizeToInsert(operation.value, fail);
          addAt(operation.path, cloneJson(operation.value), size, fail);
          break;
        }
        case "remove":
          removeAt(operation.path, fail, true);
          break;
        case "replace": {
          resolve(root, operation.path, fail);
          const size = sizeToInsert(operation.value, fail);
          const value = cloneJson(operation.value);
          if (operation.path.length === 0) {
            setRoot(value, size);
            break;
          }
          checkDepth(operation.path, value, fail);
          const parent = resolve(root, operation.path.slice(0, -1), fail);
          const token = operation.path.at(-1)!;
          if (Array.isArray(parent)) replaceItem(parent, arrayIndex(token, parent.length - 1, fail), value, size);
          else setMember(parent as JsonObject, token, value, size);
          break;
        }
        case "test":
          if (!jsonEquals(resolve(root, operation.path, fail), operation.value)) throw fail("test-failed", "value differs");
          break;
        case "copy": {
          const value = resolve(root, operation.from, fail);
          work.copy(value, fail);
          const size = sizeToInsert(value, fail);
          addAt(operation.path, cloneJson(value), size, fail);
          break;
        }
        case "move": {
          const value = resolve(root, operation.from, fail);
          if (operation.from.length === operation.path.length && operation.from.every((token, i) => token === operation.path[i])) break;
          // LIMIT-023: a deeper place needs the value's nesting checked, which reads all of it.
          const deeper = operation.path.length > operation.from.length;
          if (deeper) work.moveDeeper(value, fail);
          // The value leaves one place and enters another: its own size cancels out, only the
          // member names, commas and whatever the target replaces change the total.
          removeAt(operation.from, fail, false);
          sizeToInsert(operation.path.at(-1)!, fail);
          if (operation.path.length === 0) {
            // The moved value becomes the whole state: its size is the state's.
            setRoot(value, canonicalSize(value));
            break;
          }
          addAt(operation.path, value, undefined, fail, !deeper);
          break;
        }
      }
      settle(fail);
    };

    // --- RFC 7396, as `applyMergePatch` does it -------------------------------------------------

    /** `applyMergePatch(x, patch)` for an `x` that is not an object: a fresh value. */
    const freshMerge = (patch: JsonValue): JsonValue => {
      if (!isJsonObject(patch)) return cloneJson(patch);
      const result: JsonObject = {};
      for (const key of Object.keys(patch)) {
        const value = patch[key]!;
        if (value !== null) defineMember(result, key, freshMerge(value));
      }
      return result;
    };
    const mergeInto = (target: JsonObject, patch: JsonObject): void => {
      for (const key of Object.keys(patch)) {
        const value = patch[key]!;
        const has = Object.hasOwn(target, key);
        if (value === null) {
          if (has) deleteMember(target, key, canonicalSize(target[key]!));
          continue;
        }
        const current = has ? target[key]! : null;
        if (isJsonObject(current) && isJsonObject(value)) {
          mergeInto(current, value);
          continue;
        }
        const next = freshMerge(value);
        setMember(target, key, next, canonicalSize(next));
      }
    };
    const applyMerge = (patch: JsonValue): void => {
      if (isJsonObject(patch) && isJsonObject(root)) mergeInto(root, patch);
      else {
        const next = freshMerge(patch);
        setRoot(next, canonicalSize(next));
      }
      settle(undefined);
    };

    let applied = 0;
    try {
      for (const patches of groups) {
        if (!work.nextGroup()) break;
        applied++;
        for (const raw of patches) {
          const patch = raw instanceof Uint8Array ? parseJsonDocument(raw) : checkPatchDocument(raw);
          if (jsonEncoding === DeltaEncoding.DELTA_ENCODING_JSON_PATCH) parseOperations(patch).forEach(applyOperation);
          else applyMerge(patch);
        }
      }
    } catch (error) {
      for (let i = undo.length - 1; i >= 0; i--) undo[i]!();
      root = startRoot;
      total = startSize;
      throw error;
    }
    return applied;
  }
}
