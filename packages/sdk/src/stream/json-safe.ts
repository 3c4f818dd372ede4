import { isContinuityError } from "../errors/continuity-error.js";
import { toHex } from "../protocol/index.js";

/** What `toJsonSafe` makes of an SDK error. */
export interface JsonSafeError {
  readonly name: string;
  /** Canonical gRPC status code, as a number. */
  readonly code?: number | undefined;
  readonly reason?: string | undefined;
  readonly message: string;
  readonly metadata?: Readonly<Record<string, string>> | undefined;
}

/**
 * The type `toJsonSafe` returns for a value of type `T`: bigints and byte arrays become
 * strings, errors plain objects, functions disappear; everything else keeps its shape.
 */
export type JsonSafe<T> = T extends bigint
  ? string
  : T extends Uint8Array
    ? string
    : T extends Date
      ? string
      : T extends Error
        ? JsonSafeError
        : T extends (...args: never[]) => unknown
          ? undefined
          : T extends readonly (infer Item)[]
            ? JsonSafe<Item>[]
            : T extends object
              ? { [Key in keyof T]: JsonSafe<T[Key]> }
              : T;

/**
 * A copy of `value` that `JSON.stringify` and `structuredClone`-less channels (postMessage to
 * old workers, logs, React devtools, a server's JSON API) take as is. Versions and client
 * sequences are `bigint` in the SDK, because stream versions are 64-bit and a JavaScript
 * number loses exactness above 2^53 − 1; `JSON.stringify` throws on a bigint, so they become
 * decimal strings here (parse them back with `BigInt(text)`). Byte arrays become lowercase
 * hex (as `StreamStatus.headHash` already is), a `ContinuityError` becomes
 * `{ name, code, reason, message, metadata }`, dates ISO strings, and functions are left out.
 *
 * @throws TypeError for a cyclic value, as `JSON.stringify` does.
 *
 * @example
 * ```ts
 * progress.on("status", (status) => {
 *   // {"connected":true,"pendingCount":0,"confirmedVersion":"42","headHash":"9f…",…}
 *   console.log(JSON.stringify(toJsonSafe(status)));
 * });
 * ```
 */
export function toJsonSafe<T>(value: T): JsonSafe<T> {
  return convert(value, new Set()) as JsonSafe<T>;
}

function convert(value: unknown, seen: Set<object>): unknown {
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "function" || typeof value === "symbol") return undefined;
  if (value === null || typeof value !== "object") return value;
  if (value instanceof Uint8Array) return toHex(value);
  if (value instanceof Date) return value.toISOString();
  if (seen.has(value)) throw new TypeError("toJsonSafe: the value is cyclic");
  seen.add(value);
  try {
    if (isContinuityError(value)) {
      return { name: value.name, code: value.code, reason: value.reason, message: value.message, metadata: { ...value.metadata } };
    }
    if (value instanceof Error) return { name: value.name, message: value.message };
    if (Array.isArray(value)) return value.map((item) => convert(item, seen) ?? null);
    const copy: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      const converted = convert(item, seen);
      if (converted !== undefined) copy[key] = converted;
    }
    return copy;
  } finally {
    seen.delete(value);
  }
}
