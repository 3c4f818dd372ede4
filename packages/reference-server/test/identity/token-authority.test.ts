import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT, generateKeyPair } from "jose";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { createPlatformRegistry } from "../../src/auth/platforms.js";
import {
  AuthFailure,
  SERVER_KEY_FILE,
  createTokenAuthority,
  type TokenAuthority,
} from "../../src/auth/token-authority.js";
import { createTestPlatform, unsecuredAssertion, type TestPlatform } from "../../src/testing/test-platform.js";

const tempDirs: string[] = [];

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "continuity-key-"));
  tempDirs.push(dir);
  return dir;
}

afterEach(async () => {
  await Promise.all(tempDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

async function failureOf(promise: Promise<unknown>): Promise<AuthFailure> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof AuthFailure) return error;
    throw error;
  }
  throw new Error("expected an AuthFailure, got success");
}

describe("token authority: platform assertions", () => {
  let platformA: TestPlatform;
  let platformB: TestPlatform;
  let authority: TokenAuthority;

  beforeAll(async () => {
    platformA = await createTestPlatform("course-a");
    platformB = await createTestPlatform("course-b");
    authority = await createTokenAuthority({
      platforms: createPlatformRegistry([platformA.config, platformB.config]),
      signingKey: { kind: "ephemeral" },
    });
  });

  it("accepts a well-formed assertion and reports platform and account", async () => {
    const verified = await authority.verifyAssertion(await platformA.assertion("user-17"));
    expect(verified.platform.id).toBe("course-a");
    expect(verified.accountId).toBe("user-17");
  });

  it.each([
    ["a signature by another key", async () => {
      const { privateKey } = await generateKeyPair("ES256");
      return platformA.assertion("u", { key: privateKey });
    }],
    ["another platform's key under this platform's iss", async () => platformB.assertion("u", { claims: { iss: "course-a" } })],
    ["a wrong typ", async () => platformA.assertion("u", { header: { typ: "JWT" } })],
    ["a missing typ", async () => platformA.assertion("u", { header: { typ: undefined } })],
    ["the access-token typ", async () => platformA.assertion("u", { header: { typ: "at+jwt" } })],
    ["a wrong audience", async () => platformA.assertion("u", { claims: { aud: "someone-else" } })],
    ["an expired exp", async () => platformA.assertion("u", { iatOffset: -200, lifetime: 100 })],
    ["a lifetime above 300 s", async () => platformA.assertion("u", { lifetime: 301 })],
    ["an iat in the future beyond the skew", async () => platformA.assertion("u", { iatOffset: 120 })],
    ["no jti", async () => platformA.assertion("u", { claims: { jti: undefined } })],
    ["no exp", async () => platformA.assertion("u", { claims: { exp: undefined } })],
    ["no iat", async () => platformA.assertion("u", { claims: { iat: undefined } })],
    ["an empty sub", async () => platformA.assertion("", {})],
    ["a sub above 255 characters", async () => platformA.assertion("x".repeat(256))],
    ["alg none", async () => {
      const now = Math.floor(Date.now() / 1000);
      return unsecuredAssertion({ iss: "course-a", aud: "continuity", sub: "u", iat: now, exp: now + 60, jti: "j" });
    }],
    ["HS256 keyed with the platform's public key", async () => {
      const now = Math.floor(Date.now() / 1000);
      const secret = new TextEncoder().encode(JSON.stringify(platformA.publicJwk));
      return new SignJWT({ iss: "course-a", aud: "continuity", sub: "u", iat: now, exp: now + 60, jti: "j" })
        .setProtectedHeader({ alg: "HS256", typ: "continuity-assertion+jwt", kid: "course-a-test" })
        .sign(secret);
    }],
    ["garbage", async () => "not.a.jwt"],
  ])("refuses %s with ASSERTION_INVALID", async (_label, make) => {
    const failure = await failureOf(authority.verifyAssertion(await make()));
    expect(failure.reason).toBe("ASSERTION_INVALID");
  });

  it("accepts an assertion whose clock is a little ahead (within the 30 s skew)", async () => {
    await expect(authority.verifyAssertion(await platformA.assertion("u", { iatOffset: 20 }))).resolves.toBeDefined();
  });

  it("answers PLATFORM_UNKNOWN for an issuer it does not know", async () => {
    const stranger = await createTestPlatform("stranger");
    const failure = await failureOf(authority.verifyAssertion(await stranger.assertion("u")));
    expect(failure.reason).toBe("PLATFORM_UNKNOWN");
  });
});

describe("token authority: access tokens", () => {
  it("round-trips claims and refuses tokens it did not sign", async () => {
    const platform = await createTestPlatform("p");
    const registry = createPlatformRegistry([platform.config]);
    const authority = await createTokenAuthority({ platforms: registry, signingKey: { kind: "ephemeral" } });
    const other = await createTokenAuthority({ platforms: registry, signingKey: { kind: "ephemeral" } });
    const issued = await authority.issueAccessToken({
      subjectId: "s1",
      platformId: "p",
      deviceId: "phone-1",
      scopes: new Set(["state.read", "identity.manage"]),
    });
    const auth = await authority.verifyAccessToken(issued.token);
    expect(auth).toMatchObject({ subjectId: "s1", platformId: "p", deviceId: "phone-1", tokenId: issued.tokenId });
    expect([...auth.scopes].sort()).toEqual(["identity.manage", "state.read"]);
    expect((await failureOf(other.verifyAccessToken(issued.token))).reason).toBe("TOKEN_INVALID");
    expect((await failureOf(authority.verifyAccessToken(`${issued.token}x`))).reason).toBe("TOKEN_INVALID");
    // A platform assertion is not an access token, even though both are JWTs.
    expect((await failureOf(authority.verifyAccessToken(await platform.assertion("u")))).reason).toBe("TOKEN_INVALID");
  });

  it("reports expiry separately, on its own clock", async () => {
    const platform = await createTestPlatform("p");
    let now = new Date();
    const authority = await createTokenAuthority({
      platforms: createPlatformRegistry([platform.config]),
      signingKey: { kind: "ephemeral" },
      accessTokenSeconds: 60,
      now: () => now,
    });
    const issued = await authority.issueAccessToken({ subjectId: "s", platformId: "p", deviceId: undefined, scopes: new Set() });
    expect((await authority.verifyAccessToken(issued.token)).deviceId).toBeUndefined();
    now = new Date(now.getTime() + 70_000);
    expect((await failureOf(authority.verifyAccessToken(issued.token))).reason).toBe("TOKEN_EXPIRED");
  });

  it("remembers a verified token but still refuses it from the second it expires, and never accepts another string for it", async () => {
    const platform = await createTestPlatform("p");
    let now = new Date(Math.floor(Date.now() / 1000) * 1000);
    const authority = await createTokenAuthority({
      platforms: createPlatformRegistry([platform.config]),
      signingKey: { kind: "ephemeral" },
      accessTokenSeconds: 60,
      now: () => now,
    });
    const issued = await authority.issueAccessToken({ subjectId: "s", platformId: "p", deviceId: "d", scopes: new Set(["state.read"]) });
    const first = await authority.verifyAccessToken(issued.token);
    const start = now.getTime();
    now = new Date(start + 59_999);
    expect(await authority.verifyAccessToken(issued.token)).toEqual(first);
    // One character changed in the signature: not the remembered token, so verified afresh.
    const last = issued.token.at(-2) === "A" ? "B" : "A";
    const altered = `${issued.token.slice(0, -2)}${last}${issued.token.at(-1)}`;
    expect((await failureOf(authority.verifyAccessToken(altered))).reason).toBe("TOKEN_INVALID");
    // The same boundary as a fresh verification (AUTH-003): refused at exp exactly.
    now = new Date(start + 60_000);
    expect((await failureOf(authority.verifyAccessToken(issued.token))).reason).toBe("TOKEN_EXPIRED");
    const fresh = await createTokenAuthority({ platforms: createPlatformRegistry([platform.config]), signingKey: { kind: "ephemeral" }, now: () => now });
    expect((await failureOf(fresh.verifyAccessToken(issued.token))).reason).toBe("TOKEN_INVALID");
  });

  it("creates the server key once, mode 0600, and keeps using it across restarts", async () => {
    const dataDir = await tempDir();
    const platforms = createPlatformRegistry([(await createTestPlatform("p")).config]);
    const first = await createTokenAuthority({ platforms, signingKey: { kind: "data-dir", dataDir } });
    const token = (await first.issueAccessToken({ subjectId: "s", platformId: "p", deviceId: undefined, scopes: new Set() })).token;
    const keyFile = join(dataDir, SERVER_KEY_FILE);
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    const second = await createTokenAuthority({ platforms, signingKey: { kind: "data-dir", dataDir } });
    await expect(second.verifyAccessToken(token)).resolves.toMatchObject({ subjectId: "s" });
    const viaFile = await createTokenAuthority({ platforms, signingKey: { kind: "file", path: keyFile } });
    await expect(viaFile.verifyAccessToken(token)).resolves.toMatchObject({ subjectId: "s" });
    expect(JSON.parse(await readFile(keyFile, "utf8"))).toHaveProperty("d");
  });

  it("refuses a signing key file that is not a private P-256 key", async () => {
    const dir = await tempDir();
    const path = join(dir, "public.jwk");
    const platform = await createTestPlatform("p");
    await writeFile(path, JSON.stringify(platform.publicJwk));
    await expect(
      createTokenAuthority({ platforms: createPlatformRegistry([platform.config]), signingKey: { kind: "file", path } }),
    ).rejects.toThrow(/private EC P-256/);
  });
});
