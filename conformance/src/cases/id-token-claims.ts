import { ClientError } from "nice-grpc";
import { BadRequest, RichClientError } from "nice-grpc-error-details";
import { TOKEN_EXCHANGE, type CaseContext } from "../harness/context.js";
import { defineCase } from "../harness/define-case.js";
import { checkEqual, expectError, Status } from "../harness/expect.js";

// TOKEN-023's claim bounds of an ID token at their edges: `iat` in the future beyond the skew,
// and `sub` empty, one character, 255 and 256 characters. (oidc.ts checks the rest of TOKEN-020
// to TOKEN-026; a server that takes no ID tokens skips those cases there, and these fail it here
// only if it refuses the valid tokens below.)

function exchange(ctx: CaseContext, subjectToken: string) {
  return ctx.clients().tokens.exchangeToken({ grantType: TOKEN_EXCHANGE.grantType, subjectToken, subjectTokenType: TOKEN_EXCHANGE.idTokenType, scope: "", deviceId: "", deviceDisplayName: "" });
}

const INVALID = { code: Status.UNAUTHENTICATED, reason: "ASSERTION_INVALID" } as const;

export const ID_TOKEN_CLAIM_CASES = [
  defineCase({
    id: "oidc.id-token-iat-and-sub-at-their-edges",
    requirements: ["TOKEN-023", "TOKEN-020"],
    profile: "core",
    needs: ["oidc-provider"],
    async run(ctx) {
      const { main } = ctx.oidcProvider();
      const now = Math.floor(Date.now() / 1000);
      const probe = await exchange(ctx, await main.idToken({ sub: ctx.uniqueId("probe") })).catch((error: unknown) => error);
      const fields = probe instanceof RichClientError ? probe.extra.flatMap((detail) => (detail.$type === BadRequest.$type ? detail.fieldViolations.map((v) => v.field) : [])) : [];
      if (probe instanceof ClientError && fields.includes("subject_token_type")) ctx.skip("the server takes no ID tokens (subject_token_type id_token refused, TOKEN-010)");
      if (probe instanceof Error) throw probe;
      await expectError(exchange(ctx, await main.idToken({ sub: ctx.uniqueId("future"), claims: { iat: now + 120 } })), INVALID, "an ID token issued 120 s in the future");
      await expectError(exchange(ctx, await main.idToken({ sub: "" })), INVALID, "an ID token with an empty sub");
      await expectError(exchange(ctx, await main.idToken({ sub: "s".repeat(256) })), INVALID, "an ID token with a sub of 256 characters");
      const one = `${ctx.uniqueId("x").slice(-1)}`;
      const short = await exchange(ctx, await main.idToken({ sub: one }));
      const long = await exchange(ctx, await main.idToken({ sub: `${ctx.uniqueId("long")}`.padEnd(255, "l") }));
      checkEqual([short.accessToken !== "", long.accessToken !== "", short.subject !== long.subject], [true, true, true], "ID tokens with a sub of 1 and of 255 characters are accepted, as two accounts");
    },
  }),
];
