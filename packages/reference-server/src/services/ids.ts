import { randomBytes } from "node:crypto";

const ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";

/**
 * A server-minted opaque id: 26 characters of lowercase RFC 4648 base32 (130 random bits).
 * It carries no personal data and no ordering, so ids reveal nothing about who or when.
 * It starts with a letter, so it is also a valid stream or checkpoint id.
 */
export function newOpaqueId(): string {
  const bytes = randomBytes(17);
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < 26) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  // The first character is drawn from letters only so ids always start with one.
  return ALPHABET[bytes[0]! % 26] + out.slice(1);
}
