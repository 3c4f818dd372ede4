import { Status } from "nice-grpc-common";
import { z } from "zod";
import type { continuity } from "@continuity/sdk/gen";
import type { AuthCallContextExt } from "../auth/context.js";
import { LINK_CODE_TTL_SECONDS, generateLinkCode, hashLinkCode, normalizeLinkCode } from "../auth/link-code.js";
import { createLinkCodeAttempts } from "../auth/link-code-attempts.js";
import { parseRequest as validateRequest } from "../validation/validate.js";
import {
  accountLinkName,
  parseAccountLinkName,
  parseSubjectName,
  platformName,
  subjectName,
} from "../auth/resource-names.js";
import { requireOwnSubject, requireScope } from "../auth/scopes.js";
import { subjectNotFound } from "../auth/wire-errors.js";
import { protocolError } from "../errors.js";
import type { AccountLinkRecord } from "../store/types.js";
import type { ServiceDeps } from "./deps.js";
import { listRequestSchema, pageSize } from "./paging.js";
import { verifySubjectTokenOrThrow } from "./token-service.js";

type SubjectServiceImplementation = continuity.v1.SubjectServiceImplementation<AuthCallContextExt>;

/** Page size of identity lists when the request says 0 (proto: "the server default (50)"). */
export const IDENTITY_DEFAULT_PAGE_SIZE = 50;

const redeemSchema = z.object({
  subjectToken: z.string().min(1, "required").max(16_384),
  code: z.string().min(1, "required").max(64, "at most 64 characters"),
});


/** Wire form of an account link. */
export function accountLinkMessage(link: AccountLinkRecord): continuity.v1.AccountLink {
  return {
    name: accountLinkName(link.subjectId, link.id),
    platform: platformName(link.platformId),
    accountId: link.accountId,
    createTime: link.createdAt,
  };
}

/**
 * SubjectService: the person, their platform accounts, consent to join a new platform by
 * link code, and erasure. Every method but RedeemLinkCode acts only on the token's own
 * subject; naming another answers SUBJECT_NOT_FOUND.
 */
export function createSubjectService(deps: ServiceDeps): SubjectServiceImplementation {
  const attempts = createLinkCodeAttempts(deps.store);
  return {
    async getSubject(request, { auth }) {
      const subjectId = parseSubjectName("name", request.name);
      // Stryker disable next-line StringLiteral: requireOwnSubject does not look at the intent, so "" changes nothing
      requireOwnSubject(auth, subjectId, "read");
      const subject = await deps.store.getSubject(subjectId);
      if (subject === undefined) throw subjectNotFound();
      return { subject: { name: subjectName(subject.id), createTime: subject.createdAt } };
    },

    async deleteSubject(request, { auth }) {
      requireScope(auth, "identity.manage");
      const subjectId = parseSubjectName("name", request.name);
      requireOwnSubject(auth, subjectId, "manage");
      if (!(await deps.store.eraseSubject(subjectId))) throw subjectNotFound();
      deps.logger.info({ subject: subjectId, platform: auth.platformId }, "subject erased");
      return {};
    },

    async createLinkCode(request, { auth }) {
      requireScope(auth, "identity.manage");
      const subjectId = parseSubjectName("parent", request.parent);
      requireOwnSubject(auth, subjectId, "manage");
      const code = generateLinkCode();
      const now = deps.clock();
      const expiresAt = new Date(now.getTime() + LINK_CODE_TTL_SECONDS * 1000);
      await deps.store.createLinkCode({ subjectId, platformId: auth.platformId, codeHash: hashLinkCode(code), now, expiresAt });
      return { code, expireTime: expiresAt };
    },

    async redeemLinkCode(request) {
      const valid = validateRequest(redeemSchema, request);
      // The request has no token type: an ID token is known by its issuer (LINK-015).
      const assertion = await verifySubjectTokenOrThrow(deps, valid.subjectToken, "by-issuer");
      const platformId = assertion.platform.id;
      const now = deps.clock();
      // LINK-019: a caller that failed too often is refused before its code is looked at, so
      // that neither a valid code nor the limit itself tells anything about the codes.
      const retryAfter = await attempts.retryAfterSeconds(platformId, assertion.accountId, now);
      if (retryAfter > 0) {
        throw protocolError(
          Status.RESOURCE_EXHAUSTED,
          "LINK_CODE_ATTEMPTS_EXCEEDED",
          `too many failed link-code redemptions; retry in ${retryAfter} s`,
          { retryAfterSeconds: String(retryAfter) },
        );
      }
      const normalized = normalizeLinkCode(valid.code);
      // A code that cannot exist gets the same answer as an unknown, used or expired one.
      const result =
        normalized === undefined
          ? ({ kind: "invalid" } as const)
          : await deps.store.redeemLinkCode({
              codeHash: hashLinkCode(normalized),
              platformId,
              accountId: assertion.accountId,
              linkId: deps.newId(),
              now,
            });
      if (result.kind !== "linked") await attempts.recordFailure(platformId, assertion.accountId, now);
      switch (result.kind) {
        case "invalid":
          throw linkCodeInvalid();
        case "linked-elsewhere":
          throw protocolError(
            Status.FAILED_PRECONDITION,
            "ACCOUNT_LINKED_ELSEWHERE",
            "this platform account is already linked to another subject",
          );
        case "linked":
          return { accountLink: accountLinkMessage(result.link) };
      }
    },

    async listAccountLinks(request, { auth }) {
      requireScope(auth, "identity.manage");
      const valid = validateRequest(listRequestSchema, request);
      const subjectId = parseSubjectName("parent", valid.parent);
      requireOwnSubject(auth, subjectId, "manage");
      // Stryker disable next-line StringLiteral: the key only has to differ from other lists' keys, and ["", subject] still does
      const key = ["ListAccountLinks", subjectId];
      const page = await deps.store.listAccountLinks(subjectId, {
        after: deps.pageTokens.decode(key, valid.pageToken),
        limit: pageSize(valid.pageSize, IDENTITY_DEFAULT_PAGE_SIZE, deps.limits.maxPageSize),
      });
      return {
        accountLinks: page.items.map(accountLinkMessage),
        nextPageToken: page.nextAfter === undefined ? "" : deps.pageTokens.encode(key, page.nextAfter),
      };
    },

    async deleteAccountLink(request, { auth }) {
      requireScope(auth, "identity.manage");
      const { subjectId, linkId } = parseAccountLinkName("name", request.name);
      requireOwnSubject(auth, subjectId, "manage");
      const result = await deps.store.deleteAccountLink(subjectId, linkId);
      if (result === "not-found") throw protocolError(Status.NOT_FOUND, "ACCOUNT_LINK_NOT_FOUND", "account link not found");
      if (result === "last-link") {
        throw protocolError(
          Status.FAILED_PRECONDITION,
          "LAST_ACCOUNT_LINK",
          "removing the last account link would leave the subject unreachable; erase the subject instead",
        );
      }
      return {};
    },
  };
}

function linkCodeInvalid(): Error {
  return protocolError(Status.NOT_FOUND, "LINK_CODE_INVALID", "link code is unknown, used or expired");
}
