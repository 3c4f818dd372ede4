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
  // Stryker disable next-line Regex: with the g flag, removing runs of spaces and dashes or each one alone leaves the same string
  const code = input.toUpperCase().replace(/[\s-]+/g, "");
  // Stryker disable next-line ConditionalExpression: a pre-check only: a code of another length cannot match a stored hash, and both get LINK_CODE_INVALID (subject-service.ts)
  if (code.length !== LINK_CODE_LENGTH) return undefined;
  // Stryker disable next-line ConditionalExpression: a pre-check only: a code with other characters cannot match a stored hash, and both get LINK_CODE_INVALID
  for (const char of code) if (!LINK_CODE_ALPHABET.includes(char)) return undefined;
  return code;
}

/** What the store keeps instead of the code: its SHA-256, so a database leak yields no usable codes. */
export function hashLinkCode(normalizedCode: string): Uint8Array {
  // Stryker disable next-line StringLiteral: an empty encoding name means utf8 to Node, the same bytes are hashed
  return new Uint8Array(createHash("sha256").update(normalizedCode, "utf8").digest());
}
