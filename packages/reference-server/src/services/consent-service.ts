import { Status } from "nice-grpc-common";
import { z } from "zod";
import { continuity } from "@continuity/sdk/gen";
import type { AuthCallContextExt } from "../auth/context.js";
import { parseRequest as validateRequest } from "../validation/validate.js";
import { grantName, parseGrantName, parsePlatformName, parseSubjectName, platformName } from "../auth/resource-names.js";
import { requireOwnSubject, requireScope } from "../auth/scopes.js";
import { invalidField, protocolError } from "../errors.js";
import type { GrantAccessLevel, GrantRecord } from "../store/types.js";
import { STREAM_TYPE } from "../validation/names.js";
import type { ServiceDeps } from "./deps.js";
import { listRequestSchema, pageSize } from "./paging.js";
import { IDENTITY_DEFAULT_PAGE_SIZE } from "./subject-service.js";

type ConsentServiceImplementation = continuity.v1.ConsentServiceImplementation<AuthCallContextExt>;

const { GrantAccess } = continuity.v1;


const createSchema = z.object({
  parent: z.string(),
  grant: z.object(
    {
      grantorPlatform: z.string(),
      granteePlatform: z.string(),
      streamType: z.string().refine((value) => value === "*" || STREAM_TYPE.test(value), "a stream type (reverse-DNS) or *"),
      access: z.union(
        [z.literal(GrantAccess.GRANT_ACCESS_READ), z.literal(GrantAccess.GRANT_ACCESS_READ_WRITE)],
        "must be GRANT_ACCESS_READ or GRANT_ACCESS_READ_WRITE",
      ),
    },
    "required",
  ),
});


/** Wire form of a grant. */
export function grantMessage(grant: GrantRecord): continuity.v1.Grant {
  return {
    name: grantName(grant.subjectId, grant.id),
    grantorPlatform: platformName(grant.grantorPlatformId),
    granteePlatform: platformName(grant.granteePlatformId),
    streamType: grant.streamType,
    access: grant.access === "read" ? GrantAccess.GRANT_ACCESS_READ : GrantAccess.GRANT_ACCESS_READ_WRITE,
    createTime: grant.createdAt,
    revokeTime: grant.revokedAt,
  };
}

function grantNotFound(): Error {
  return protocolError(Status.NOT_FOUND, "GRANT_NOT_FOUND", "grant not found");
}

/**
 * ConsentService: the owner platform shares its streams with another platform of the same
 * person. The grantor is always the caller, so no platform can widen its own access; a
 * revocation is logged as an event in the same transaction, which ends affected
 * subscriptions, and access checks read grants fresh on every call.
 */
export function createConsentService(deps: ServiceDeps): ConsentServiceImplementation {
  return {
    async createGrant(request, { auth }) {
      requireScope(auth, "identity.manage");
      const valid = validateRequest(createSchema, request);
      const subjectId = parseSubjectName("parent", valid.parent);
      requireOwnSubject(auth, subjectId, "manage");
      // The grantor is always the caller; naming another platform is an attempt to share
      // streams the caller does not own, refused rather than silently rewritten (GRANT-001).
      if (valid.grant.grantorPlatform !== "" && valid.grant.grantorPlatform !== platformName(auth.platformId)) {
        throw protocolError(Status.PERMISSION_DENIED, "NOT_GRANTOR", "a platform can only grant access to its own streams");
      }
      const grantee = parsePlatformName("grant.grantee_platform", valid.grant.granteePlatform);
      if (grantee === auth.platformId) {
        throw invalidField("grant.grantee_platform", "a platform always has access to its own streams");
      }
      // Only a platform the person has joined can receive their data.
      if (deps.tokens.platforms.get(grantee) === undefined || !(await deps.store.hasAccountLink(subjectId, grantee))) {
        throw invalidField("grant.grantee_platform", "must be a platform linked to the subject");
      }
      const access: GrantAccessLevel = valid.grant.access === GrantAccess.GRANT_ACCESS_READ ? "read" : "read-write";
      const grant = await deps.store.createGrant({
        subjectId,
        id: deps.newId(),
        grantorPlatformId: auth.platformId,
        granteePlatformId: grantee,
        streamType: valid.grant.streamType,
        access,
        now: deps.clock(),
      });
      return { grant: grantMessage(grant) };
    },

    async listGrants(request, { auth }) {
      requireScope(auth, "identity.manage");
      const valid = validateRequest(listRequestSchema, request);
      const subjectId = parseSubjectName("parent", valid.parent);
      requireOwnSubject(auth, subjectId, "manage");
      // The caller is part of the key: a platform's page token is no use to another platform.
      // Stryker disable next-line StringLiteral: the key only has to differ from other lists' keys, and ["", subject, platform] still does
      const key = ["ListGrants", subjectId, auth.platformId];
      const page = await deps.store.listGrants(subjectId, auth.platformId, {
        after: deps.pageTokens.decode(key, valid.pageToken),
        limit: pageSize(valid.pageSize, IDENTITY_DEFAULT_PAGE_SIZE, deps.limits.maxPageSize),
      });
      return {
        grants: page.items.map(grantMessage),
        nextPageToken: page.nextAfter === undefined ? "" : deps.pageTokens.encode(key, page.nextAfter),
      };
    },

    async revokeGrant(request, { auth }) {
      requireScope(auth, "identity.manage");
      const { subjectId, grantId } = parseGrantName("name", request.name);
      requireOwnSubject(auth, subjectId, "manage");
      const current = await deps.store.getGrant(subjectId, grantId);
      if (current === undefined) throw grantNotFound();
      if (current.grantorPlatformId !== auth.platformId && current.granteePlatformId !== auth.platformId) {
        throw protocolError(
          Status.PERMISSION_DENIED,
          "NOT_GRANTOR",
          "only the grantor or the grantee of a grant may revoke it",
        );
      }
      const revoked = await deps.store.revokeGrant(subjectId, grantId, deps.clock());
      if (revoked === undefined) throw grantNotFound();
      deps.logger.info({ subject: subjectId, grant: grantId, platform: auth.platformId }, "grant revoked");
      return { grant: grantMessage(revoked) };
    },
  };
}
