import { generateKeyPair } from "jose";
import { afterEach, beforeEach, expect, it } from "vitest";
import { failure, startIdentityHarness, type IdentityHarness } from "./harness.js";
import type { TestPlatform } from "../../src/testing/test-platform.js";

// LINK-019 over a real connection: failed redemptions are limited per platform account and per
// platform, and a limited caller is refused before its code is looked at.

let h: IdentityHarness;
let offsetSeconds = 0;

beforeEach(async () => {
  offsetSeconds = 0;
  h = await startIdentityHarness({ now: () => new Date(Date.now() + offsetSeconds * 1000) });
});
afterEach(async () => {
  await h.close();
});

/** An assertion valid at the server's (possibly advanced) clock. */
function assertion(platform: TestPlatform, accountId: string): Promise<string> {
  return platform.assertion(accountId, { iatOffset: offsetSeconds });
}

async function ownerCode(accountId: string): Promise<{ subject: string; code: string }> {
  const owner = await h.exchange(h.platforms.a, accountId);
  const { code } = await h.as(owner.accessToken).subject.createLinkCode({ parent: owner.subject });
  return { subject: owner.subject, code };
}

async function guess(platform: TestPlatform, accountId: string, subjectToken?: string) {
  return failure(
    h.clients.subject.redeemLinkCode({ subjectToken: subjectToken ?? (await assertion(platform, accountId)), code: "AAAAAAAAAA" }),
  );
}

it("refuses an account's 11th redemption within 600 s, a valid code included, without consuming it", async () => {
  const { subject, code } = await ownerCode("owner");
  const token = await assertion(h.platforms.b, "guesser");
  for (let i = 0; i < 10; i++) expect(await guess(h.platforms.b, "guesser", token)).toMatchObject({ code: "NOT_FOUND", reason: "LINK_CODE_INVALID" });

  const refused = await failure(h.clients.subject.redeemLinkCode({ subjectToken: token, code }));
  expect(refused).toMatchObject({ code: "RESOURCE_EXHAUSTED", reason: "LINK_CODE_ATTEMPTS_EXCEEDED" });
  const retryAfter = Number(refused.metadata.retryAfterSeconds);
  expect(retryAfter).toBeGreaterThan(590);
  expect(retryAfter).toBeLessThanOrEqual(600);

  // Another account of the same platform is not limited, and the code was not consumed.
  const linked = await h.clients.subject.redeemLinkCode({ subjectToken: await assertion(h.platforms.b, "friend"), code });
  expect(linked.accountLink?.name.startsWith(`${subject}/accountLinks/`)).toBe(true);

  // Still limited just before the window closes, free again once it has.
  offsetSeconds = 595;
  expect(await guess(h.platforms.b, "guesser")).toMatchObject({ code: "RESOURCE_EXHAUSTED", metadata: { retryAfterSeconds: "5" } });
  offsetSeconds = 601;
  expect(await guess(h.platforms.b, "guesser")).toMatchObject({ code: "NOT_FOUND", reason: "LINK_CODE_INVALID" });
});

it("counts malformed codes and ACCOUNT_LINKED_ELSEWHERE, but not failed assertions", async () => {
  const { code } = await ownerCode("owner");
  const elsewhere = "linked-elsewhere";
  await h.exchange(h.platforms.b, elsewhere);
  const token = await assertion(h.platforms.b, elsewhere);
  for (let i = 0; i < 5; i++) {
    expect(await failure(h.clients.subject.redeemLinkCode({ subjectToken: token, code }))).toMatchObject({ reason: "ACCOUNT_LINKED_ELSEWHERE" });
    expect(await failure(h.clients.subject.redeemLinkCode({ subjectToken: token, code: "short" }))).toMatchObject({ reason: "LINK_CODE_INVALID" });
  }
  expect(await failure(h.clients.subject.redeemLinkCode({ subjectToken: token, code }))).toMatchObject({ reason: "LINK_CODE_ATTEMPTS_EXCEEDED" });

  const forgery = (await generateKeyPair("ES256")).privateKey;
  for (let i = 0; i < 12; i++) {
    const forged = await h.platforms.b.assertion("joiner", { key: forgery });
    expect(await failure(h.clients.subject.redeemLinkCode({ subjectToken: forged, code }))).toMatchObject({ reason: "ASSERTION_INVALID" });
  }
  const joined = await h.clients.subject.redeemLinkCode({ subjectToken: await assertion(h.platforms.b, "joiner"), code });
  expect(joined.accountLink?.accountId).toBe("joiner");
});

it("limits a platform to 300 failures in a window, whatever account ids it signs", async () => {
  const { code } = await ownerCode("owner");
  for (let account = 0; account < 30; account++) {
    const token = await assertion(h.platforms.b, `minted-${account}`);
    const answers = await Promise.all(Array.from({ length: 10 }, () => guess(h.platforms.b, "", token)));
    for (const answer of answers) expect(answer.reason).toBe("LINK_CODE_INVALID");
  }
  expect(await failure(h.clients.subject.redeemLinkCode({ subjectToken: await assertion(h.platforms.b, "fresh"), code }))).toMatchObject({
    code: "RESOURCE_EXHAUSTED",
    reason: "LINK_CODE_ATTEMPTS_EXCEEDED",
  });
  // Other platforms are not affected, and the code still works.
  const linked = await h.clients.subject.redeemLinkCode({ subjectToken: await assertion(h.platforms.readOnly, "reader"), code });
  expect(linked.accountLink?.platform).toBe("platforms/reader-c");
});
