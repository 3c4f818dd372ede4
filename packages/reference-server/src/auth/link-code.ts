import { createHash, randomInt } from "node:crypto";

/** Characters of a link code: no 0/O, 1/I/L or U, so a code read aloud is typed right. */
export const LINK_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789";
/** Length of a link code: 30^10 ≈ 5.9e14 codes, far beyond guessing within one TTL. */
export const LINK_CODE_LENGTH = 10;
/** How long a link code works. */
export const LINK_CODE_TTL_SECONDS = 600;

/** A fresh code from a CSPRNG, uniformly over the alphabet. */
export function generateLinkCode(): string {
  let code = "";
  for (let i = 0; i < LINK_CODE_LENGTH; i++) code += LINK_CODE_ALPHABET[randomInt(LINK_CODE_ALPHABET.length)];
  return code;
}

/**
 * The code as a person might have typed it, in canonical form: upper case, spaces and
 * dashes removed. Undefined when what remains cannot be a code, so that the store is never
 * asked about input that could not match.
 */
export function normalizeLinkCode(input: string): string | undefined {
  const code = input.toUpperCase().replace(/[\s-]+/g, "");
  if (code.length !== LINK_CODE_LENGTH) return undefined;
  for (const char of code) if (!LINK_CODE_ALPHABET.includes(char)) return undefined;
  return code;
}

/** What the store keeps instead of the code: its SHA-256, so a database leak yields no usable codes. */
export function hashLinkCode(normalizedCode: string): Uint8Array {
  return new Uint8Array(createHash("sha256").update(normalizedCode, "utf8").digest());
}
