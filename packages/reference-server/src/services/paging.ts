import { z } from "zod";
import { createHmac, timingSafeEqual } from "node:crypto";
import { Status } from "nice-grpc-common";
import { protocolError } from "../errors.js";

/**
 * AIP-158 page tokens. A token carries the store's continuation key and a MAC over the key
 * and the request it belongs to (method, parent, filters, caller), so a token is opaque,
 * cannot be forged or edited, and is refused with INVALID_PAGE_TOKEN when replayed against
 * a different request. The MAC key lives with the data, so tokens survive restarts.
 */
export interface PageTokens {
  /** A token continuing `request` after `after`. */
  encode(request: readonly string[], after: string): string;
  /** The continuation key of a token minted for `request`; undefined for an empty token. */
  decode(request: readonly string[], token: string): string | undefined;
}

/**
 * A MAC over JSON-serializable values, keyed with the store's instance secret: what lets the
 * server hand out opaque tokens (page tokens, subscription cursors) and later recognise the
 * ones it minted without keeping any state. 128 bits: forgery stays out of reach while
 * tokens stay short. Callers give values of distinct shapes, so one token cannot pass as
 * another kind.
 */
export interface Mac {
  sign(value: unknown): Buffer;
  /** Constant-time check of a tag against `value`. */
  verify(value: unknown, tag: Uint8Array): boolean;
}

/** Creates a {@link Mac} over a secret. */
export function createMac(secret: Uint8Array): Mac {
  const sign = (value: unknown): Buffer => createHmac("sha256", secret).update(JSON.stringify(value)).digest().subarray(0, 16);
  return {
    sign,
    verify(value, tag) {
      const expected = sign(value);
      return tag.length === expected.length && timingSafeEqual(tag, expected);
    },
  };
}

/** Creates the page-token codec over the server's {@link Mac}. */
export function createPageTokens(tags: Mac): PageTokens {
  const mac = (request: readonly string[], after: string): Buffer => tags.sign([request, after]);
  return {
    encode(request, after) {
      // Stryker disable next-line StringLiteral: an empty encoding name means utf8 to Node: the same bytes
      return `${Buffer.from(after, "utf8").toString("base64url")}.${mac(request, after).toString("base64url")}`;
    },
    decode(request, token) {
      if (token === "") return undefined;
      // The key and its MAC; a token of any other form, or whose MAC does not verify, was not
      // minted here. No length bound is needed: nothing of a token is used before its MAC
      // verifies, and gRPC bounds the request message.
      const parts = token.split(".");
      if (parts.length !== 2) throw invalidPageToken();
      const after = Buffer.from(parts[0]!, "base64url").toString("utf8");
      if (!tags.verify([request, after], Buffer.from(parts[1]!, "base64url"))) throw invalidPageToken();
      return after;
    },
  };
}

/** A requested page size clamped per AIP-158: 0 means the default, above the maximum means the maximum. */
export function pageSize(requested: number, defaultSize: number, max: number): number {
  if (requested <= 0) return Math.min(defaultSize, max);
  return Math.min(requested, max);
}

/** INVALID_ARGUMENT / INVALID_PAGE_TOKEN: the token was not minted for this request. */
export function invalidPageToken(): Error {
  return protocolError(Status.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN", "page_token was not issued for this request");
}

/** The fields every identity List request shares (ListAccountLinks, ListDevices, ListGrants). */
export const listRequestSchema = z.object({
  parent: z.string(),
  pageSize: z.number().int().min(0, "must not be negative"),
  // No length bound here: a token too long to be one the server minted is refused by the
  // decoder as INVALID_PAGE_TOKEN, as every other token it did not mint (DELTA-024).
  pageToken: z.string(),
});
