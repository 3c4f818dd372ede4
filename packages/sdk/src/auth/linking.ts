import { Status } from "nice-grpc-common";
import type { ContinuityClient } from "../client/continuity-client.js";
import { ContinuityError } from "../errors/continuity-error.js";
import { GrantAccess, type Grant } from "../gen/continuity/v1/consent_service.js";
import type { AccountLink } from "../gen/continuity/v1/subject_service.js";

/** A link code and when it stops working. */
export interface LinkCode {
  /** Ten characters to read out and type; one use. */
  readonly code: string;
  /** When the code expires (at most ten minutes after creation). */
  readonly expireTime: Date | undefined;
}

/**
 * Creates a one-time link code on a platform already linked to the subject, for the person
 * to type on a new platform. The code is consent: nothing links platforms automatically.
 *
 * @example
 * ```ts
 * const { code, expireTime } = await createLinkCode(laptopClient);
 * showToUser(`Type ${code} in the other app before ${expireTime?.toLocaleTimeString()}`);
 * ```
 */
export async function createLinkCode(
  client: ContinuityClient,
  options: { signal?: AbortSignal | undefined } = {},
): Promise<LinkCode> {
  const callOptions = options.signal === undefined ? {} : { signal: options.signal };
  const { subject } = await client.session(callOptions);
  const response = await client.subjects.createLinkCode({ parent: subject }, callOptions);
  return { code: response.code, expireTime: response.expireTime };
}

/**
 * Redeems a link code on the new platform. `assertion` is the new platform's assertion for
 * its own account; afterwards, token exchanges for that account act for the linked subject.
 * Needs no token, so `client` may be one whose token provider cannot exchange yet.
 *
 * @example
 * ```ts
 * await redeemLinkCode(phoneClient, { code: "K7QX-4MPA-2Z", assertion: await backendB.assert("acct-9") });
 * ```
 */
export async function redeemLinkCode(
  client: ContinuityClient,
  options: { code: string; assertion: string; signal?: AbortSignal | undefined },
): Promise<AccountLink> {
  const response = await client.subjects.redeemLinkCode(
    { code: options.code, subjectToken: options.assertion },
    options.signal === undefined ? {} : { signal: options.signal },
  );
  if (response.accountLink === undefined) throw new ContinuityError({ code: Status.INTERNAL, message: "RedeemLinkCode answered without a link" });
  return response.accountLink;
}

/**
 * Grants another linked platform access to this platform's streams of one type (or `*`),
 * on the person's behalf. Without a grant a linked platform sees none of this platform's
 * streams.
 *
 * @example
 * ```ts
 * // The person allows the reader app of platform "acme-books" to read their course progress.
 * await grantStreamAccess(client, { platform: "acme-books", streamType: "org.example.course-progress", access: "read" });
 * ```
 */
export async function grantStreamAccess(
  client: ContinuityClient,
  options: { platform: string; streamType?: string | undefined; access: "read" | "read-write"; signal?: AbortSignal | undefined },
): Promise<Grant> {
  const callOptions = options.signal === undefined ? {} : { signal: options.signal };
  const { subject } = await client.session(callOptions);
  const response = await client.consent.createGrant(
    {
      parent: subject,
      grant: {
        granteePlatform: options.platform.startsWith("platforms/") ? options.platform : `platforms/${options.platform}`,
        streamType: options.streamType ?? "*",
        access: options.access === "read" ? GrantAccess.GRANT_ACCESS_READ : GrantAccess.GRANT_ACCESS_READ_WRITE,
      },
    },
    callOptions,
  );
  if (response.grant === undefined) throw new ContinuityError({ code: Status.INTERNAL, message: "CreateGrant answered without a grant" });
  return response.grant;
}
