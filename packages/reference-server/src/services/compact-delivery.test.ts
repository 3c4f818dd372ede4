import { describe, expect, it } from "vitest";
import { compactCursorPrefix, compactCursorSuffix, parseCompactCursor } from "./compact-delivery.js";

const tag = Buffer.alloc(16, 7);
const cursorOf = (...parts: Buffer[]) => Buffer.concat(parts).toString("base64url");

describe("compact cursors", () => {
  it("parse back to the position and tag they were made of, at any size of sequence", () => {
    for (const sequence of [0, 1, 127, 128, 300, 16_383, 16_384, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER]) {
      const text = cursorOf(compactCursorPrefix("abc123"), compactCursorSuffix(sequence, tag));
      expect(parseCompactCursor(text)).toEqual({ epoch: "abc123", sequence, tag });
    }
  });

  it("refuse every other spelling: a longer varint, a short or long tag, padding, another version, a bad epoch", () => {
    const prefix = compactCursorPrefix("e1");
    // 1 written in two bytes (0x81 0x00) is not the canonical varint of 1.
    expect(parseCompactCursor(cursorOf(prefix, Buffer.from([0x81, 0x00]), tag))).toBeUndefined();
    expect(parseCompactCursor(cursorOf(prefix, Buffer.from([0x01]), tag.subarray(1)))).toBeUndefined();
    expect(parseCompactCursor(cursorOf(prefix, Buffer.from([0x01]), tag, Buffer.from([0])))).toBeUndefined();
    expect(parseCompactCursor(`${cursorOf(prefix, compactCursorSuffix(1, tag))}=`)).toBeUndefined();
    expect(parseCompactCursor(cursorOf(Buffer.from([0x02, 2]), Buffer.from("e1"), compactCursorSuffix(1, tag)))).toBeUndefined();
    expect(parseCompactCursor(cursorOf(Buffer.from([0x03, 2]), Buffer.from("e."), compactCursorSuffix(1, tag)))).toBeUndefined();
    expect(parseCompactCursor(cursorOf(Buffer.from([0x03, 0]), compactCursorSuffix(1, tag)))).toBeUndefined();
    // A varint that never ends, and one beyond the safe integers.
    expect(parseCompactCursor(cursorOf(prefix, Buffer.alloc(20, 0xff)))).toBeUndefined();
    expect(parseCompactCursor(cursorOf(prefix, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]), tag))).toBeUndefined();
    expect(parseCompactCursor("")).toBeUndefined();
  });
});
