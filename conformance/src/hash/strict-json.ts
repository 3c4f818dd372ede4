/**
 * The conformance suite's own reading of JSON documents (spec: docs/spec/hashing.md, "JSON
 * documents"), written apart from the SDK on purpose: a recursive-descent parser that enforces
 * the I-JSON rules itself, and the `json-canonicalize` package for RFC 8785. A bug shared by
 * the SDK and the reference server therefore cannot make the suite agree with them.
 */
import { canonicalizeEx } from "json-canonicalize";

/** Nesting limit of the spec (HASH-024). */
export const JSON_DEPTH_LIMIT = 256;

/** Why bytes were refused; the same words the vectors use. */
export type StrictJsonFailure =
  | "invalid-utf8"
  | "byte-order-mark"
  | "invalid-json"
  | "duplicate-member"
  | "lone-surrogate"
  | "number-out-of-range"
  | "too-deep"
  | "reserved-member-name";

/** Thrown by `parseStrictJson`. */
export class StrictJsonError extends Error {
  override readonly name = "StrictJsonError";
  constructor(
    readonly failure: StrictJsonFailure,
    message: string,
  ) {
    super(message);
  }
}

const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Parses bytes under every rule of the spec or throws `StrictJsonError`. */
export function parseStrictJson(bytes: Uint8Array): unknown {
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    throw new StrictJsonError("invalid-utf8", "not UTF-8");
  }
  if (text.startsWith("\ufeff")) throw new StrictJsonError("byte-order-mark", "starts with U+FEFF");
  const parser = new Parser(text);
  const value = parser.document();
  return value;
}

const WHITESPACE = new Set([" ", "\t", "\n", "\r"]);
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const SIMPLE_ESCAPES: Record<string, string> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };

class Parser {
  private pos = 0;
  constructor(private readonly text: string) {}

  document(): unknown {
    const value = this.value(0);
    this.skipWhitespace();
    if (this.pos !== this.text.length) this.fail("invalid-json", "text after the document");
    return value;
  }

  private fail(failure: StrictJsonFailure, message: string): never {
    throw new StrictJsonError(failure, `${message} at offset ${this.pos}`);
  }

  private skipWhitespace(): void {
    while (WHITESPACE.has(this.text[this.pos] ?? "")) this.pos++;
  }

  private value(depth: number): unknown {
    this.skipWhitespace();
    const char = this.text[this.pos];
    if (char === "{" || char === "[") {
      if (depth + 1 > JSON_DEPTH_LIMIT) this.fail("too-deep", "nesting too deep");
      return char === "{" ? this.object(depth + 1) : this.array(depth + 1);
    }
    if (char === '"') return this.string();
    for (const [literal, result] of [["true", true], ["false", false], ["null", null]] as const) {
      if (this.text.startsWith(literal, this.pos)) {
        this.pos += literal.length;
        return result;
      }
    }
    NUMBER.lastIndex = this.pos;
    const match = NUMBER.exec(this.text);
    if (match === null) this.fail("invalid-json", "unexpected character");
    this.pos += match[0].length;
    const number = Number(match[0]);
    if (!Number.isFinite(number)) this.fail("number-out-of-range", "number beyond the double range");
    return number;
  }

  private object(depth: number): Record<string, unknown> {
    this.pos++;
    // `__proto__` is refused below before any assignment, so plain assignment is safe here.
    const result: Record<string, unknown> = {};
    const seen = new Set<string>();
    this.skipWhitespace();
    if (this.text[this.pos] === "}") {
      this.pos++;
      return result;
    }
    for (;;) {
      this.skipWhitespace();
      if (this.text[this.pos] !== '"') this.fail("invalid-json", "expected a member name");
      const name = this.string();
      if (seen.has(name)) this.fail("duplicate-member", `duplicate member ${JSON.stringify(name)}`);
      if (name === "__proto__") this.fail("reserved-member-name", "member __proto__");
      seen.add(name);
      this.skipWhitespace();
      if (this.text[this.pos] !== ":") this.fail("invalid-json", "expected ':'");
      this.pos++;
      result[name] = this.value(depth);
      this.skipWhitespace();
      const next = this.text[this.pos++];
      if (next === "}") return result;
      if (next !== ",") this.fail("invalid-json", "expected ',' or '}'");
    }
  }

  private array(depth: number): unknown[] {
    this.pos++;
    const result: unknown[] = [];
    this.skipWhitespace();
    if (this.text[this.pos] === "]") {
      this.pos++;
      return result;
    }
    for (;;) {
      result.push(this.value(depth));
      this.skipWhitespace();
      const next = this.text[this.pos++];
      if (next === "]") return result;
      if (next !== ",") this.fail("invalid-json", "expected ',' or ']'");
    }
  }

  private string(): string {
    this.pos++;
    let out = "";
    for (;;) {
      const char = this.text[this.pos++];
      if (char === undefined) this.fail("invalid-json", "unterminated string");
      if (char === '"') break;
      if (char < " ") this.fail("invalid-json", "unescaped control character");
      if (char !== "\\") {
        out += char;
        continue;
      }
      const escape = this.text[this.pos++] ?? "";
      if (escape === "u") {
        const hex = this.text.slice(this.pos, this.pos + 4);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail("invalid-json", "bad \\u escape");
        out += String.fromCharCode(Number.parseInt(hex, 16));
        this.pos += 4;
      } else if (escape in SIMPLE_ESCAPES) {
        out += SIMPLE_ESCAPES[escape];
      } else {
        this.fail("invalid-json", "bad escape");
      }
    }
    if (hasLoneSurrogate(out)) this.fail("lone-surrogate", "lone surrogate");
    return out;
  }
}

function hasLoneSurrogate(text: string): boolean {
  // Every high surrogate followed by a low one, and no low one on its own.
  return /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(text);
}

/**
 * RFC 8785 canonical bytes of `value`, serialized by `json-canonicalize`. Two of its gaps are
 * closed first: it would escape lone surrogates instead of refusing them, and it treats any
 * object with a `toJSON` member as a scalar, while for JSON data that is just a member; the
 * (rare) objects that carry one are assembled here, member by member.
 */
export function canonicalJson(value: unknown): Uint8Array {
  return Buffer.from(canonicalText(value), "utf8");
}

function canonicalText(value: unknown): string {
  assertNoLoneSurrogates(value);
  if (!hasToJsonMember(value)) return canonicalizeEx(value, { strictUndefined: true });
  if (Array.isArray(value)) return `[${value.map(canonicalText).join(",")}]`;
  const record = value as Record<string, unknown>;
  const members = Object.keys(record)
    .sort()
    .map((name) => `${canonicalizeEx(name)}:${canonicalText(record[name])}`);
  return `{${members.join(",")}}`;
}

function assertNoLoneSurrogates(value: unknown): void {
  if (typeof value === "string" && hasLoneSurrogate(value)) throw new TypeError("lone surrogate");
  if (typeof value !== "object" || value === null) return;
  for (const [name, child] of Object.entries(value)) {
    if (hasLoneSurrogate(name)) throw new TypeError("lone surrogate in a member name");
    assertNoLoneSurrogates(child);
  }
}

function hasToJsonMember(value: unknown): boolean {
  if (typeof value !== "object" || value === null) return false;
  if (!Array.isArray(value) && Object.hasOwn(value, "toJSON")) return true;
  return Object.values(value).some(hasToJsonMember);
}
