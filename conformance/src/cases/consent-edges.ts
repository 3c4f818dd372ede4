import { v1 } from "../harness/clients.js";
import { TOKEN_EXCHANGE, type Session } from "../harness/context.js";
import { defineCase } from "../harness/define-case.js";
import { check, checkEqual, expectError, fail, Status } from "../harness/expect.js";
import { linkAccount } from "../harness/linking.js";

function grant(owner: Session, grantee: Session, streamType: string, access: number, grantorPlatform = "") {
  return { parent: owner.subject, grant: { name: "", grantorPlatform, granteePlatform: `platforms/${grantee.platform.id}`, streamType, access, createTime: undefined, revokeTime: undefined } };
}

/** Grants and devices at their edges: what a reply echoes, which field an error names, page tokens of another subject. */
export const CONSENT_EDGE_CASES = [
  defineCase({
    id: "consent-edges.grant-says-what-was-granted",
    requirements: ["GRANT-001", "GRANT-005"],
    profile: "identity",
    async run(ctx) {
      const owner = await ctx.session();
      const grantee = await linkAccount(ctx, owner, ctx.platforms.b, "grantee");
      const own = `platforms/${owner.platform.id}`;
      // The grantor named explicitly as the caller's own platform is the same as leaving it empty.
      const { grant: readWrite } = await owner.clients.consent.createGrant(grant(owner, grantee, "org.example.cart", v1.GrantAccess.GRANT_ACCESS_READ_WRITE, own));
      const { grant: read } = await owner.clients.consent.createGrant(grant(owner, grantee, "*", v1.GrantAccess.GRANT_ACCESS_READ));
      const shape = (g: typeof read) => [g?.grantorPlatform, g?.granteePlatform, g?.streamType, g?.access, g?.revokeTime];
      checkEqual(shape(readWrite), [own, `platforms/${grantee.platform.id}`, "org.example.cart", v1.GrantAccess.GRANT_ACCESS_READ_WRITE, undefined], "a READ_WRITE grant naming its own grantor");
      checkEqual(shape(read), [own, `platforms/${grantee.platform.id}`, "*", v1.GrantAccess.GRANT_ACCESS_READ, undefined], "a READ grant");
      check(readWrite?.createTime !== undefined && read?.createTime !== undefined, "Grant.create_time must be set");
      for (const [who, session] of [["grantor", owner], ["grantee", grantee]] as const) {
        const listed = await session.clients.consent.listGrants({ parent: session.subject, pageSize: 0, pageToken: "" });
        checkEqual(listed.grants.map((g) => [g.name, g.access, g.streamType]), [[readWrite!.name, v1.GrantAccess.GRANT_ACCESS_READ_WRITE, "org.example.cart"], [read!.name, v1.GrantAccess.GRANT_ACCESS_READ, "*"]], `grants the ${who} lists, oldest first`);
      }
    },
  }),
  defineCase({
    id: "consent-edges.identity-page-tokens-bound-to-their-subject",
    requirements: ["DELTA-024", "DELTA-022", "GRANT-005", "DEVICE-003"],
    profile: "identity",
    async run(ctx) {
      // Two pages of grants, devices and account links in one subject; the first page's token
      // is no position in another subject's list.
      const owner = await ctx.session();
      const grantee = await linkAccount(ctx, owner, ctx.platforms.b, "grantee");
      await linkAccount(ctx, owner, ctx.platforms.c, "third");
      await ctx.session({ accountId: owner.accountId });
      for (const type of ["org.example.one", "org.example.two"]) await owner.clients.consent.createGrant(grant(owner, grantee, type, v1.GrantAccess.GRANT_ACCESS_READ));
      const other = await ctx.session();
      const page = { pageSize: 1, pageToken: "" };
      const lists = [
        ["ListGrants", (s: Session, pageToken: string) => s.clients.consent.listGrants({ parent: s.subject, ...page, pageToken })],
        ["ListDevices", (s: Session, pageToken: string) => s.clients.devices.listDevices({ parent: s.subject, ...page, pageToken })],
        ["ListAccountLinks", (s: Session, pageToken: string) => s.clients.subjects.listAccountLinks({ parent: s.subject, ...page, pageToken })],
      ] as const;
      for (const [method, list] of lists) {
        const first = await list(owner, "");
        if (first.nextPageToken === "") fail(`${method} with page_size 1 over two or more items must return a next_page_token`);
        const second = await list(owner, first.nextPageToken);
        check(JSON.stringify(second) !== JSON.stringify(first), `${method}: the second page differs from the first`);
        await expectError(list(other, first.nextPageToken), { code: Status.INVALID_ARGUMENT, reason: "INVALID_PAGE_TOKEN" }, `${method} of another subject with this subject's page token`);
      }
    },
  }),
  defineCase({
    id: "consent-edges.identity-errors-name-the-field",
    requirements: ["ERR-004", "GRANT-002", "DEVICE-002"],
    profile: "identity",
    async run(ctx) {
      const owner = await ctx.session();
      const grantee = await linkAccount(ctx, owner, ctx.platforms.b, "grantee");
      const invalid = (fields: string[]) => ({ code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELD", fieldViolations: fields });
      // Malformed names of every identity method are names.identity-names-refused's; these are
      // well-formed names that are still the wrong value.
      await expectError(owner.clients.consent.createGrant(grant(owner, owner, "*", v1.GrantAccess.GRANT_ACCESS_READ)), invalid(["grant.grantee_platform"]), "a grant to the caller's own platform");
      // DEVICE-002: a device id another platform registered is a bad device_id for this one.
      await grantee.clients.devices.registerDevice({ parent: grantee.subject, deviceId: "b-tablet", displayName: "tablet" });
      await expectError(owner.clients.devices.registerDevice({ parent: owner.subject, deviceId: "b-tablet", displayName: "" }), invalid(["device_id"]), "RegisterDevice with the id of another platform's device");
    },
  }),
  defineCase({
    id: "consent-edges.empty-display-name-keeps-the-name",
    requirements: ["DEVICE-001", "DEVICE-003"],
    profile: "identity",
    async run(ctx) {
      const owner = await ctx.session();
      const { device: unnamed } = await owner.clients.devices.registerDevice({ parent: owner.subject, deviceId: "unnamed", displayName: "" });
      checkEqual(unnamed?.displayName, "", "display_name of a device registered without one");
      await owner.clients.devices.registerDevice({ parent: owner.subject, deviceId: "tv", displayName: "Living room" });
      const { device: again } = await owner.clients.devices.registerDevice({ parent: owner.subject, deviceId: "tv", displayName: "" });
      checkEqual(again?.displayName, "Living room", "RegisterDevice again with an empty display_name");
      const { device: renamed } = await owner.clients.devices.registerDevice({ parent: owner.subject, deviceId: "tv", displayName: "Bedroom" });
      checkEqual(renamed?.displayName, "Bedroom", "RegisterDevice again with a new display_name");
    },
  }),
  defineCase({
    id: "consent-edges.successful-redemptions-not-counted",
    requirements: ["LINK-019", "LINK-016"],
    profile: "identity",
    async run(ctx) {
      // LINK-019 counts redemptions that link nothing. An account already linked to the code's
      // subject redeems successfully (LINK-016): eleven of those in a row are no failures, so
      // the eleventh is still looked at.
      const owner = await ctx.session();
      const linked = await linkAccount(ctx, owner, ctx.platforms.b, "again");
      const assertion = await ctx.mintAssertion({ platform: linked.platform, accountId: linked.accountId });
      for (let attempt = 1; attempt <= 11; attempt++) {
        const { code } = await owner.clients.subjects.createLinkCode({ parent: owner.subject });
        const { accountLink } = await ctx.clients().subjects.redeemLinkCode({ subjectToken: assertion, code });
        checkEqual([accountLink?.platform, accountLink?.accountId], [`platforms/${linked.platform.id}`, linked.accountId], `redemption ${attempt} by the linked account returns its link`);
      }
    },
  }),
  defineCase({
    id: "consent-edges.refused-scopes-all-named",
    requirements: ["TOKEN-014"],
    profile: "core",
    async run(ctx) {
      // The read-only platform asks for both scopes it may not have: metadata names both.
      const subjectToken = await ctx.mintAssertion({ platform: ctx.platforms.c, accountId: ctx.uniqueId("reader") });
      const { info } = await expectError(ctx.clients().tokens.exchangeToken({ grantType: TOKEN_EXCHANGE.grantType, subjectToken, subjectTokenType: TOKEN_EXCHANGE.subjectTokenType, scope: "state.read state.write identity.manage", deviceId: "", deviceDisplayName: "" }), { code: Status.PERMISSION_DENIED, reason: "SCOPE_NOT_ALLOWED" }, "a read-only platform asking for state.write and identity.manage");
      checkEqual((info.metadata["scope"] ?? "").split(" ").sort(), ["identity.manage", "state.write"], "SCOPE_NOT_ALLOWED metadata scope, split at single spaces");
    },
  }),
];
