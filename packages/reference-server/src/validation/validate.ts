import type { z } from "zod";
import { invalidFields } from "../errors.js";
import type { FieldViolation } from "../errors.js";

/**
 * Parses a request with a zod schema and turns every issue into a google.rpc.BadRequest
 * field violation (INVALID_ARGUMENT / INVALID_FIELD). Field paths use the proto's
 * snake_case names and `[i]` for list positions, e.g. `deltas[2].payload`, because that is
 * what clients in any language see in the .proto.
 */
export function parseRequest<S extends z.ZodType>(schema: S, request: unknown): z.output<S> {
  const result = schema.safeParse(request);
  if (result.success) return result.data;
  const seen = new Set<string>();
  const violations: FieldViolation[] = [];
  for (const issue of result.error.issues) {
    const field = fieldPath(issue.path);
    if (seen.has(field)) continue;
    seen.add(field);
    violations.push({ field, description: issue.message });
  }
  throw invalidFields(violations);
}

/** `["deltas", 2, "payload"]` → `deltas[2].payload`; camelCase keys become snake_case. */
export function fieldPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else {
      const name = String(key).replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
      out += out === "" ? name : `.${name}`;
    }
  }
  return out;
}
