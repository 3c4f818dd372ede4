import { v1 } from "../harness/clients.js";
import { TOKEN_EXCHANGE, type CaseContext, type Session } from "../harness/context.js";
import { defineCase } from "../harness/define-case.js";
import { expectError, fail, Status, type ExpectedError } from "../harness/expect.js";
import { linkAccount } from "../harness/linking.js";
import { append, createStream, ENCODING } from "../harness/streams.js";

/** A refusal a case provokes, and what it must be. */
interface Refusal {
  readonly what: string;
  readonly call: () => Promise<unknown>;
  readonly expected: ExpectedError;
}

/**
 * ERR-007: a status message is a sentence that helps a developer. Clients never branch on it,
 * so the check is only that there is one: at least two words, with letters.
 */
async function checkMessages(refusals: readonly Refusal[]): Promise<void> {
  const bad: string[] = [];
  for (const refusal of refusals) {
    const { message } = await expectError(refusal.call, refusal.expected, refusal.what);
    if (!/[A-Za-z]{2,}\W+[A-Za-z]{2,}/.test(message)) bad.push(`${refusal.what}: ${JSON.stringify(message)}`);
  }
  if (bad.length > 0) fail(`status messages that say nothing to a developer:\n${bad.join("\n")}`);
}

function grantRequest(owner: Session, granteePlatform: string, grantorPlatform = "") {
  return { parent: owner.subject, grant: { name: "", grantorPlatform, granteePlatform, streamType: "*", access: v1.GrantAccess.GRANT_ACCESS_READ, createTime: undefined, revokeTime: undefined } };
}

async function identityRefusals(ctx: CaseContext): Promise<Refusal[]> {
  const owner = await ctx.session();
  const grantee = await linkAccount(ctx, owner, ctx.platforms.b, "grantee");
  const third = await linkAccount(ctx, owner, ctx.platforms.c, "third");
  const other = await ctx.session();
  // c may only read (fixtures/platform-keys.ts): b grants to c, and a is neither party.
  const { grant } = await grantee.clients.consent.createGrant(grantRequest(grantee, `platforms/${third.platform.id}`));
  return [
    { what: "RevokeGrant of an unknown grant", call: () => owner.clients.consent.revokeGrant({ name: `${owner.subject}/grants/no-such-grant` }), expected: { code: Status.NOT_FOUND, reason: "GRANT_NOT_FOUND" } },
    { what: "RevokeGrant by a platform neither grantor nor grantee", call: () => owner.clients.consent.revokeGrant({ name: grant!.name }), expected: { code: Status.PERMISSION_DENIED, reason: "NOT_GRANTOR" } },
    { what: "CreateGrant naming another grantor", call: () => owner.clients.consent.createGrant(grantRequest(owner, `platforms/${third.platform.id}`, `platforms/${grantee.platform.id}`)), expected: { code: Status.PERMISSION_DENIED, reason: "NOT_GRANTOR" } },
    { what: "RedeemLinkCode of an unknown code", call: async () => ctx.clients().subjects.redeemLinkCode({ subjectToken: await ctx.mintAssertion({ platform: ctx.platforms.b, accountId: ctx.uniqueId("guess") }), code: "ABCDEFGHJK" }), expected: { code: Status.NOT_FOUND, reason: "LINK_CODE_INVALID" } },
    { what: "RedeemLinkCode by an account linked to another subject", call: async () => {
      const { code } = await other.clients.subjects.createLinkCode({ parent: other.subject });
      return ctx.clients().subjects.redeemLinkCode({ subjectToken: await ctx.mintAssertion({ platform: grantee.platform, accountId: grantee.accountId }), code });
    }, expected: { code: Status.FAILED_PRECONDITION, reason: "ACCOUNT_LINKED_ELSEWHERE" } },
    { what: "RedeemLinkCode after 10 failed redemptions", call: async () => {
      // LINK-019: the account's eleventh redemption within the window is refused.
      const guesser = await ctx.mintAssertion({ platform: ctx.platforms.a, accountId: ctx.uniqueId("guesser") });
      for (let i = 0; i < 10; i++) await ctx.clients().subjects.redeemLinkCode({ subjectToken: guesser, code: "ABCDEFGHJK" }).catch(() => undefined);
      return ctx.clients().subjects.redeemLinkCode({ subjectToken: guesser, code: "ABCDEFGHJK" });
    }, expected: { code: Status.RESOURCE_EXHAUSTED, reason: "LINK_CODE_ATTEMPTS_EXCEEDED" } },
    { what: "DeleteAccountLink of an unknown link", call: () => owner.clients.subjects.deleteAccountLink({ name: `${owner.subject}/accountLinks/no-such-link` }), expected: { code: Status.NOT_FOUND, reason: "ACCOUNT_LINK_NOT_FOUND" } },
    { what: "DeleteAccountLink of the last link", call: async () => {
      const { accountLinks } = await other.clients.subjects.listAccountLinks({ parent: other.subject, pageSize: 0, pageToken: "" });
      return other.clients.subjects.deleteAccountLink({ name: accountLinks[0]!.name });
    }, expected: { code: Status.FAILED_PRECONDITION, reason: "LAST_ACCOUNT_LINK" } },
    { what: "ExchangeToken asking for a scope the platform may not have", call: async () => ctx.clients().tokens.exchangeToken({ grantType: TOKEN_EXCHANGE.grantType, subjectToken: await ctx.mintAssertion({ platform: ctx.platforms.c, accountId: ctx.uniqueId("reader") }), subjectTokenType: TOKEN_EXCHANGE.subjectTokenType, scope: "state.write", deviceId: "", deviceDisplayName: "" }), expected: { code: Status.PERMISSION_DENIED, reason: "SCOPE_NOT_ALLOWED" } },
    { what: "ExchangeToken for a revoked device", call: async () => {
      const device = await ctx.session({ accountId: other.accountId });
      await other.clients.devices.revokeDevice({ name: device.device });
      return ctx.session({ accountId: other.accountId, deviceId: device.deviceId });
    }, expected: { code: Status.PERMISSION_DENIED, reason: "DEVICE_REVOKED" } },
    { what: "RevokeDevice of an unknown device", call: () => owner.clients.devices.revokeDevice({ name: `${owner.subject}/devices/no-such-device` }), expected: { code: Status.NOT_FOUND, reason: "DEVICE_NOT_FOUND" } },
  ];
}

async function checkpointRefusals(ctx: CaseContext): Promise<Refusal[]> {
  const source = await ctx.session();
  const other = await ctx.session({ accountId: source.accountId });
  const stream = await createStream(ctx, source, { encoding: ENCODING.opaque });
  await append(source, stream.name, [Buffer.from("x")], { clientSequence: 1 });
  const id = ctx.uniqueId("ckpt");
  const create = (checkpointId: string, extra: object = {}) => source.clients.checkpoints.createCheckpoint({ parent: source.subject, checkpointId, streams: [{ stream: stream.name }], resume: undefined, ...extra });
  const { checkpoint } = await create(id);
  const offer = async () => (await source.clients.checkpoints.offerHandoff({ parent: source.subject, checkpoint: checkpoint!.name, targetDevice: "", ttlSeconds: 0 })).handoff!;
  const accepted = await offer();
  await other.clients.checkpoints.acceptHandoff({ name: accepted.name });
  const tooLong = "x".repeat(ctx.limits.maxResumePayloadBytes + 1);
  return [
    { what: "GetCheckpoint of an unknown checkpoint", call: () => source.clients.checkpoints.getCheckpoint({ name: `${source.subject}/checkpoints/no-such-checkpoint` }), expected: { code: Status.NOT_FOUND, reason: "CHECKPOINT_NOT_FOUND" } },
    { what: "CreateCheckpoint with an id in use", call: () => create(id), expected: { code: Status.ALREADY_EXISTS, reason: "CHECKPOINT_ALREADY_EXISTS" } },
    { what: "CreateCheckpoint with a resume payload over the limit", call: () => create("", { resume: { activityType: "org.example.x", resource: "", position: tooLong, fallbackUrl: "", attributes: {} } }), expected: { code: Status.RESOURCE_EXHAUSTED, reason: "RESUME_PAYLOAD_TOO_LARGE" } },
    { what: "RestoreCheckpoint of an opaque stream", call: () => source.clients.checkpoints.restoreCheckpoint({ name: checkpoint!.name }), expected: { code: Status.FAILED_PRECONDITION, reason: "ENCODING_UNSUPPORTED" } },
    { what: "GetHandoff of an unknown handoff", call: () => source.clients.checkpoints.getHandoff({ name: `${source.subject}/handoffs/no-such-handoff` }), expected: { code: Status.NOT_FOUND, reason: "HANDOFF_NOT_FOUND" } },
    { what: "AcceptHandoff of an accepted handoff", call: () => other.clients.checkpoints.acceptHandoff({ name: accepted.name }).then(() => other.clients.checkpoints.declineHandoff({ name: accepted.name })), expected: { code: Status.FAILED_PRECONDITION, reason: "HANDOFF_RESOLVED" } },
    { what: "OfferHandoff to a device the subject does not have", call: () => source.clients.checkpoints.offerHandoff({ parent: source.subject, checkpoint: checkpoint!.name, targetDevice: `${source.subject}/devices/no-such-device`, ttlSeconds: 0 }), expected: { code: Status.NOT_FOUND, reason: "DEVICE_NOT_FOUND" } },
  ];
}

/** Every refusal says in words what went wrong. */
export const ERROR_MESSAGE_CASES = [
  defineCase({
    id: "error-messages.checkpoint-refusals-explain-themselves",
    requirements: ["ERR-007"],
    profile: "core",
    async run(ctx) {
      await checkMessages(await checkpointRefusals(ctx));
    },
  }),
  defineCase({
    id: "error-messages.identity-refusals-explain-themselves",
    requirements: ["ERR-007"],
    profile: "identity",
    async run(ctx) {
      await checkMessages(await identityRefusals(ctx));
    },
  }),
];
