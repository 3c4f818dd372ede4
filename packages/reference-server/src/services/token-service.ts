import { Status } from "nice-grpc-common";
import { z } from "zod";
import type { continuity } from "@continuity/sdk/gen";
import { ALL_SCOPES, type Scope } from "../auth/context.js";
import { parseRequest as validateRequest } from "../validation/validate.js";
import { deviceName, isDeviceId, platformName, subjectName } from "../auth/resource-names.js";
import { IdentityProviderUnavailable } from "../auth/id-tokens.js";
import {
  AuthFailure,
  SubjectTokenKindRefused,
  formatScopes,
  parseScopes,
  type SubjectTokenKind,
  type VerifiedAssertion,
} from "../auth/token-authority.js";
import { authFailureError } from "../auth/wire-errors.js";
import { invalidField, protocolError } from "../errors.js";
import type { ServiceDeps } from "./deps.js";
import { subjectMovedError } from "./portability/subject-gate.js";

type TokenServiceImplementation = continuity.v1.TokenServiceImplementation;

/** RFC 8693 grant type of the exchange. */
export const TOKEN_EXCHANGE_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange";
/** RFC 8693 token type of the platform assertion. */
export const JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt";
/** RFC 8693 token type of an OpenID Connect ID token from a platform's own provider. */
export const ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token";
/** RFC 8693 token type of what the exchange issues. */
export const ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";

/** Longest subject token we bother to parse; assertions are well under 2 KiB, ID tokens a few KiB. */
const MAX_ASSERTION_CHARS = 16_384;

/** The request schema; `id_token` is a valid type only on a server with an OIDC platform (TOKEN-010). */
const exchangeSchema = (subjectTokenTypes: readonly [string, ...string[]]) => z.object({
  grantType: z.literal(TOKEN_EXCHANGE_GRANT_TYPE, `must be ${TOKEN_EXCHANGE_GRANT_TYPE}`),
  subjectToken: z.string().min(1, "required").max(MAX_ASSERTION_CHARS, `at most ${MAX_ASSERTION_CHARS} characters`),
  subjectTokenType: z.enum(subjectTokenTypes, `must be ${subjectTokenTypes.join(" or ")}`),
  scope: z
    .string()
    .max(256)
    .refine((value) => parseScopes(value) !== undefined, `space-separated subset of: ${ALL_SCOPES.join(" ")}`),
  deviceId: z
    .string()
    .refine((value) => value === "" || isDeviceId(value), "1 to 63 characters of [a-z0-9-], starting with a letter or digit"),
  deviceDisplayName: z.string().max(100, "at most 100 characters"),
});

/**
 * Verifies a subject token (an exchange's, as the kind its type names; a link-code
 * redemption's, by its issuer) and turns a refusal into its wire error: an unreachable
 * identity provider is the server's trouble, not the caller's credential, so it is never
 * UNAUTHENTICATED (TOKEN-026).
 */
export async function verifySubjectTokenOrThrow(
  deps: Pick<ServiceDeps, "tokens" | "logger">,
  token: string,
  kind: SubjectTokenKind | "by-issuer",
): Promise<VerifiedAssertion> {
  try {
    return await deps.tokens.verifySubjectToken(token, kind);
  } catch (error) {
    if (error instanceof AuthFailure) {
      // The caller only learns the reason; the operator integrating a platform needs the
      // failed check (never the token itself).
      deps.logger.info({ reason: error.reason, detail: error.detail, kind }, "subject token refused");
      throw authFailureError(error);
    }
    if (error instanceof SubjectTokenKindRefused) throw invalidField("subject_token_type", error.message);
    if (error instanceof IdentityProviderUnavailable) {
      deps.logger.warn({ platform: error.platformId, detail: error.detail }, "identity provider keys unavailable");
      throw protocolError(Status.UNAVAILABLE, "IDENTITY_PROVIDER_UNAVAILABLE", "the platform's identity provider could not be reached; retry later", { platform: `platforms/${error.platformId}` });
    }
    throw error;
  }
}

/**
 * TokenService: the one door in. A verified platform assertion becomes a short-lived access
 * token; the first exchange of an unknown account creates its subject, and the first
 * exchange naming an unknown device registers it.
 *
 * Fields are validated before the assertion is verified (as OAuth answers invalid_request
 * before invalid_grant): a malformed request says nothing about any subject either way.
 */
export function createTokenService(deps: ServiceDeps): TokenServiceImplementation {
  const schema = exchangeSchema(deps.tokens.acceptsIdTokens ? [JWT_TOKEN_TYPE, ID_TOKEN_TYPE] : [JWT_TOKEN_TYPE]);
  return {
    async exchangeToken(request) {
      const valid = validateRequest(schema, request);
      const kind = valid.subjectTokenType === ID_TOKEN_TYPE ? "id_token" : "assertion";
      const assertion = await verifySubjectTokenOrThrow(deps, valid.subjectToken, kind);
      const platform = assertion.platform;

      const requested = parseScopes(valid.scope) ?? new Set<Scope>();
      let scopes: Set<Scope>;
      if (requested.size === 0) {
        scopes = new Set(platform.scopes);
      } else {
        const beyond = [...requested].filter((scope) => !platform.scopes.has(scope));
        if (beyond.length > 0) {
          // Refused, never narrowed: a client that silently got less than it asked for
          // would fail later and far from the cause.
          throw protocolError(
            Status.PERMISSION_DENIED,
            "SCOPE_NOT_ALLOWED",
            `platform ${platform.id} may not receive ${beyond.join(" ")}`,
            { scope: beyond.join(" ") },
          );
        }
        scopes = requested;
      }

      const now = deps.clock();
      let subjectId: string;
      let created = false;
      const existing = await deps.store.findAccountLink(platform.id, assertion.accountId);
      if (existing !== undefined) {
        subjectId = existing.subjectId;
        // PORT-032: the accounts of a subject that moved are answered with the redirect.
        const move = await deps.store.getSubjectMove(subjectId);
        if (move !== undefined) throw subjectMovedError(move);
      } else {
        const result = await deps.store.createSubjectWithLink({
          subjectId: deps.newId(),
          linkId: deps.newId(),
          platformId: platform.id,
          accountId: assertion.accountId,
          now,
        });
        subjectId = result.subject.id;
        created = result.created;
      }

      const deviceId = valid.deviceId === "" ? undefined : valid.deviceId;
      if (deviceId !== undefined) await bindDevice(deps, subjectId, platform.id, deviceId, valid.deviceDisplayName, now);

      const issued = await deps.tokens.issueAccessToken({ subjectId, platformId: platform.id, deviceId, scopes });
      deps.logger.debug(
        { subject: subjectId, platform: platform.id, device: deviceId, created, assertionJti: assertion.assertionId },
        "token exchanged",
      );
      return {
        accessToken: issued.token,
        issuedTokenType: ACCESS_TOKEN_TYPE,
        tokenType: "Bearer",
        expiresIn: issued.expiresInSeconds,
        scope: formatScopes(scopes),
        subject: subjectName(subjectId),
        platform: platformName(platform.id),
        device: deviceId === undefined ? "" : deviceName(subjectId, deviceId),
        subjectCreated: created,
      };
    },
  };
}

/**
 * Registers the device on first use, and refuses binding a token to a revoked device or to
 * another platform's device: client sequences are per device, so two platforms sharing one
 * device id would corrupt each other's exactly-once bookkeeping.
 */
async function bindDevice(
  deps: ServiceDeps,
  subjectId: string,
  platformId: string,
  deviceId: string,
  displayName: string,
  now: Date,
): Promise<void> {
  const result = await deps.store.registerDevice({
    subjectId,
    deviceId,
    platformId,
    displayName: displayName === "" ? undefined : displayName,
    now,
  });
  if (result.kind === "revoked") throw deviceRevoked();
  if (result.kind === "other-platform") throw deviceOfOtherPlatform();
  if (result.kind === "subject-not-found") {
    // Erased between the link lookup and now; a retry creates a fresh subject.
    throw protocolError(Status.NOT_FOUND, "SUBJECT_NOT_FOUND", "subject was erased during the exchange");
  }
}

/**
 * INVALID_ARGUMENT / INVALID_FIELD on `device_id`: two platforms sharing one device id would
 * corrupt each other's exactly-once bookkeeping, since client sequences are per device.
 */
export function deviceOfOtherPlatform(): Error {
  return invalidField("device_id", "is registered to this subject through another platform");
}

/** PERMISSION_DENIED / DEVICE_REVOKED: a revoked device never acts for the subject again. */
export function deviceRevoked(): Error {
  return protocolError(Status.PERMISSION_DENIED, "DEVICE_REVOKED", "the device was revoked and cannot be used again");
}
