import type { CaseContext, Session } from "./context.js";

/**
 * Links a fresh account of `platform` to `owner`'s subject the way a person does: a link
 * code created by `owner`, redeemed with the new platform's assertion, then a session of the
 * new account. It asserts nothing; cases that test linking check the outcome themselves.
 */
export async function linkAccount(ctx: CaseContext, owner: Session, platform = ctx.platforms.b, idPrefix = "linked"): Promise<Session> {
  const { code } = await owner.clients.subjects.createLinkCode({ parent: owner.subject });
  const accountId = ctx.uniqueId(idPrefix);
  await ctx.clients().subjects.redeemLinkCode({ subjectToken: await ctx.mintAssertion({ platform, accountId }), code });
  return ctx.session({ platform, accountId });
}
