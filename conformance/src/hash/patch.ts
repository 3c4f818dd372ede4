/**
 * The suite's own JSON Patch (RFC 6902) and Merge Patch (RFC 7396) appliers, with the strict
 * semantics of docs/spec/hashing.md ("JSON deltas"). Written apart from the SDK, in a
 * copy-on-write style, to recompute expected states independently.
 */
type Json = null | boolean | number | string | Json[] | { [name: string]: Json };

/** How a patch failed: `malformed` (INVALID_ARGUMENT) or `not-applicable` (FAILED_PRECONDITION). */
export class PatchFailure extends Error {
  override readonly name = "PatchFailure";
  constructor(
    readonly outcome: "malformed" | "not-applicable",
    message: string,
  ) {
    super(message);
  }
}

const malformed = (message: string) => new PatchFailure("malformed", message);
const notApplicable = (message: string) => new PatchFailure("not-applicable", message);
const isObject = (value: unknown): value is { [name: string]: Json } => typeof value === "object" && value !== null && !Array.isArray(value);

/** RFC 7396 MergePatch(target, patch), returning a new value. */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const result: { [name: string]: Json } = isObject(target) ? { ...target } : {};
  for (const [name, value] of Object.entries(patch)) {
    if (value === null) delete result[name];
    else result[name] = applyMergePatch(result[name] ?? null, value) as Json;
  }
  return result;
}

/** RFC 6902 with the spec's strict rules: all operations or none, returning a new value. */
export function applyJsonPatch(document: unknown, patch: unknown): unknown {
  if (!Array.isArray(patch)) throw malformed("not an array");
  const operations = patch.map(checkOperation);
  return operations.reduce<Json>((current, operation) => {
    const next = step(current, operation);
    if (depthOf(next) > 256) throw notApplicable("result nested more than 256 levels");
    return next;
  }, document as Json);
}

function depthOf(value: Json): number {
  if (typeof value !== "object" || value === null) return 0;
  return 1 + Math.max(0, ...(Array.isArray(value) ? value : Object.values(value)).map(depthOf));
}

interface Op {
  op: string;
  path: string[];
  from: string[];
  value: Json;
}

function checkOperation(raw: unknown): Op {
  if (!isObject(raw)) throw malformed("operation is not an object");
  const { op, path, from } = raw;
  if (!["add", "remove", "replace", "move", "copy", "test"].includes(op as string)) throw malformed(`bad op ${String(op)}`);
  const parsedPath = pointer(path);
  const needsValue = op === "add" || op === "replace" || op === "test";
  if (needsValue && !Object.hasOwn(raw, "value")) throw malformed("missing value");
  const parsedFrom = op === "move" || op === "copy" ? pointer(from) : [];
  if (op === "remove" && parsedPath.length === 0) throw malformed("remove of the root");
  if (op === "move" && parsedFrom.length < parsedPath.length && parsedFrom.every((token, i) => parsedPath[i] === token)) {
    throw malformed("move into a child");
  }
  return { op: op as string, path: parsedPath, from: parsedFrom, value: (raw["value"] ?? null) as Json };
}

function pointer(text: unknown): string[] {
  if (typeof text !== "string") throw malformed("pointer is not a string");
  if (text === "") return [];
  if (text[0] !== "/") throw malformed("pointer does not start with /");
  return text
    .split("/")
    .slice(1)
    .map((token) => {
      if (/~[^01]|~$/.test(token)) throw malformed("bad ~ escape");
      const name = token.replace(/~1/g, "/").replace(/~0/g, "~");
      if (name === "__proto__") throw malformed("reserved member name");
      return name;
    });
}

function step(document: Json, operation: Op): Json {
  switch (operation.op) {
    case "add":
      return insert(document, operation.path, operation.value);
    case "remove":
      get(document, operation.path);
      return remove(document, operation.path);
    case "replace":
      get(document, operation.path);
      return operation.path.length === 0 ? operation.value : insert(remove(document, operation.path), operation.path, operation.value);
    case "test":
      if (canonical(get(document, operation.path)) !== canonical(operation.value)) throw notApplicable("test failed");
      return document;
    case "copy":
      return insert(document, operation.path, get(document, operation.from));
    default: {
      const value = get(document, operation.from);
      const samePath = operation.from.length === operation.path.length && operation.from.every((token, i) => operation.path[i] === token);
      if (samePath) return document;
      return insert(remove(document, operation.from), operation.path, value);
    }
  }
}

function index(token: string, length: number): number {
  if (!/^(0|[1-9]\d*)$/.test(token)) throw notApplicable(`bad index ${token}`);
  const value = Number(token);
  if (value >= length) throw notApplicable("index out of range");
  return value;
}

function get(document: Json, path: string[]): Json {
  let current = document;
  for (const token of path) {
    if (Array.isArray(current)) current = current[index(token, current.length)]!;
    else if (isObject(current) && Object.hasOwn(current, token)) current = current[token]!;
    else throw notApplicable(`missing ${token}`);
  }
  return current;
}

/** A copy of `document` with `value` added at `path`. */
function insert(document: Json, path: string[], value: Json): Json {
  const [token, ...rest] = path;
  if (token === undefined) return value;
  if (rest.length === 0) {
    if (Array.isArray(document)) {
      const at = token === "-" ? document.length : index(token, document.length + 1);
      return [...document.slice(0, at), value, ...document.slice(at)];
    }
    if (isObject(document)) return { ...document, [token]: value };
    throw notApplicable("parent is not a container");
  }
  if (Array.isArray(document)) {
    const at = index(token, document.length);
    return document.map((item, i) => (i === at ? insert(item, rest, value) : item));
  }
  if (isObject(document) && Object.hasOwn(document, token)) return { ...document, [token]: insert(document[token]!, rest, value) };
  throw notApplicable(`missing ${token}`);
}

function remove(document: Json, path: string[]): Json {
  const [token, ...rest] = path;
  if (token === undefined) return document;
  if (Array.isArray(document)) {
    const at = index(token, document.length);
    return rest.length === 0 ? document.filter((_, i) => i !== at) : document.map((item, i) => (i === at ? remove(item, rest) : item));
  }
  if (isObject(document) && Object.hasOwn(document, token)) {
    if (rest.length > 0) return { ...document, [token]: remove(document[token]!, rest) };
    const { [token]: _removed, ...others } = document;
    return others;
  }
  throw notApplicable(`missing ${token}`);
}

function canonical(value: Json): string {
  return JSON.stringify(sortDeep(value));
}

function sortDeep(value: Json): Json {
  if (Array.isArray(value)) return value.map(sortDeep);
  if (!isObject(value)) return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((name) => [name, sortDeep(value[name]!)]),
  );
}
