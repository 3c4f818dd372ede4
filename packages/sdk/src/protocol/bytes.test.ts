import { describe, expect, it } from "vitest";
import { bytesEqual, concatBytes, fromHex, isWellFormedUnicode, lp, toHex, u32be, u64be, u8 } from "./bytes.js";

describe("hex", () => {
  it("round-trips every byte value and writes lowercase", () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    const hex = toHex(all);
    expect(hex).toMatch(/^[0-9a-f]{512}$/);
    expect(hex.slice(0, 6)).toBe("000102");
    expect(hex.slice(-4)).toBe("feff");
    expect(fromHex(hex)).toEqual(all);
    expect(fromHex("ABcd")).toEqual(Uint8Array.of(0xab, 0xcd));
  });

  it.each(["abc", "0x00", "zz", "00 11", "-1"])("refuses %j", (text) => {
    expect(() => fromHex(text)).toThrow(RangeError);
  });
});

describe("integers", () => {
  it("writes big-endian fixed widths", () => {
    expect(toHex(u8(255))).toBe("ff");
    expect(toHex(u32be(0x01020304))).toBe("01020304");
    expect(toHex(u64be(1n))).toBe("0000000000000001");
    expect(toHex(u64be((1n << 64n) - 1n))).toBe("ffffffffffffffff");
    expect(toHex(u64be(Number.MAX_SAFE_INTEGER))).toBe("001fffffffffffff");
  });

  it("refuses values that do not fit instead of wrapping", () => {
    expect(() => u8(256)).toThrow(RangeError);
    expect(() => u32be(2 ** 32)).toThrow(RangeError);
    expect(() => u32be(-1)).toThrow(RangeError);
    expect(() => u64be(1n << 64n)).toThrow(RangeError);
    expect(() => u64be(-1n)).toThrow(RangeError);
    expect(() => u64be(2 ** 53)).toThrow(RangeError);
    expect(() => u64be(1.5)).toThrow(RangeError);
  });
});

describe("lp", () => {
  it("prefixes the UTF-8 byte length, not the UTF-16 length", () => {
    // U+1F600 is 2 UTF-16 units and 4 UTF-8 bytes; "é" is 1 unit and 2 bytes.
    expect(toHex(lp("\u{1f600}é"))).toBe("00000006" + "f09f9880" + "c3a9");
    expect(toHex(lp(""))).toBe("00000000");
  });

  it("refuses lone surrogates, which have no UTF-8 form", () => {
    expect(() => lp("a\ud800")).toThrow(TypeError);
    expect(isWellFormedUnicode("\udc00x")).toBe(false);
    expect(isWellFormedUnicode("\ud83d\ude00")).toBe(true);
  });
});

describe("concatBytes and bytesEqual", () => {
  it("concatenates in order", () => {
    expect(concatBytes([Uint8Array.of(1), new Uint8Array(), Uint8Array.of(2, 3)])).toEqual(Uint8Array.of(1, 2, 3));
    expect(bytesEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2))).toBe(true);
    expect(bytesEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 3))).toBe(false);
    expect(bytesEqual(Uint8Array.of(1), Uint8Array.of(1, 0))).toBe(false);
  });
});
