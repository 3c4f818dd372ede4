/**
 * The member names of very wide JSON objects, kept beside them: listing the names of an object
 * of a million members (`Object.keys`, or `for…in`, which collects them the same way) is one
 * native step of most of a second, which a server that must give its event loop back every few
 * milliseconds cannot take. An index is made where the names pass by one at a time anyway (a
 * sliced parser reading the object, {@link editJsonState} adding the member that makes it wide),
 * and `editJsonState` keeps it exact through every insertion, removal and undo, so its size is
 * the member count and its names can be read a few at a time.
 *
 * An object with an index must be changed only by `editJsonState` (the one editor that keeps it
 * exact); any other change would leave the index wrong, and a wrong index means wrong canonical
 * bytes. Readers that find no index list the names themselves.
 */
import type { JsonObject } from "./json.js";

/**
 * Objects of more members than this get an index when they pass by: below it `Object.keys` takes
 * well under a millisecond, and the index would only cost memory.
 */
export const WIDE_OBJECT_MEMBERS = 4096;

const indexes = new WeakMap<JsonObject, Set<string>>();

/**
 * The member names of `object` when an index of them is kept (exactly `Object.keys(object)`, in
 * no particular order), else undefined. Read it, never change it; the object must not change
 * while its names are read.
 */
export function indexedMemberNames(object: JsonObject): ReadonlySet<string> | undefined {
  return indexes.get(object);
}

/**
 * Records `names` as the index of `object`, which the caller has just built and holds alone:
 * `names` must be exactly its own enumerable member names, and from now on the object must be
 * changed only by `editJsonState`. The set is taken over, not copied. For a sliced parser, which
 * sees each name as it defines the member.
 */
export function recordMemberNames(object: JsonObject, names: Set<string>): void {
  indexes.set(object, names);
}

/**
 * The member names of `object` as readers walk them: its index when it has one (nothing is
 * listed), else `Object.keys`; {@link countOf} counts them.
 */
export function memberNames(object: JsonObject): ReadonlySet<string> | readonly string[] {
  return indexes.get(object) ?? Object.keys(object);
}

/** How many names {@link memberNames} gave. */
export function countOf(names: ReadonlySet<string> | readonly string[]): number {
  return "size" in names ? names.size : names.length;
}

/** The index of `object`, for the editor that keeps it: undefined when there is none. */
export function memberNameIndex(object: JsonObject): Set<string> | undefined {
  return indexes.get(object);
}
