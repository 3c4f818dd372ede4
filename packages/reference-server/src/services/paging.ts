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

/** Creates the page-token codec over a secret. */
export function createPageTokens(secret: Uint8Array): PageTokens {
  const mac = (request: readonly string[], after: string): Buffer =>
    createHmac("sha256", secret).update(JSON.stringify([request, after])).digest().subarray(0, 16);
  return {
    encode(request, after) {
      return `${Buffer.from(after, "utf8").toString("base64url")}.${mac(request, after).toString("base64url")}`;
    },
    decode(request, token) {
      if (token === "") return undefined;
      const invalid = () =>
        protocolError(Status.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN", "page_token was not issued for this request");
      const parts = token.split(".");
      if (parts.length !== 2 || token.length > 1024) throw invalid();
      const after = Buffer.from(parts[0]!, "base64url").toString("utf8");
      const given = Buffer.from(parts[1]!, "base64url");
      const expected = mac(request, after);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw invalid();
      return after;
    },
  };
}

/** A requested page size clamped per AIP-158: 0 means the default, above the maximum means the maximum. */
export function pageSize(requested: number, defaultSize: number, max: number): number {
  if (requested <= 0) return Math.min(defaultSize, max);
  return Math.min(requested, max);
}
