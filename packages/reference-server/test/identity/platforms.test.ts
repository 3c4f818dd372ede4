import { mkdtemp, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { PlatformsFileError, ensureDevPlatforms, loadPlatformsFile } from "../../src/auth/platforms.js";
import { createTestPlatform } from "../../src/testing/test-platform.js";

const OIDC = { issuer: "https://idp.example", clientId: "app-123", jwksUri: "https://idp.example/jwks.json" };

const tempDirs: string[] = [];

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "continuity-platforms-"));
  tempDirs.push(dir);
  return dir;
}

afterEach(async () => {
  await Promise.all(tempDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

async function refusal(content: unknown): Promise<string> {
  const dir = await tempDir();
  const file = join(dir, "platforms.json");
  await writeFile(file, typeof content === "string" ? content : JSON.stringify(content));
  try {
    await loadPlatformsFile(file);
  } catch (error) {
    if (error instanceof PlatformsFileError) return error.message;
    throw error;
  }
  throw new Error("expected the platforms file to be refused");
}

describe("platforms file", () => {
  it("loads the conformance suite's published platforms (attach mode)", async () => {
    const path = fileURLToPath(new URL("../../../../conformance/fixtures/platforms.json", import.meta.url));
    const registry = await loadPlatformsFile(path);
    expect(registry.list().map((p) => p.id)).toEqual(["conformance-a", "conformance-b", "conformance-c"]);
    expect([...(registry.get("conformance-c")?.scopes ?? [])]).toEqual(["state.read"]);
  });

  it("resolves jwksFile relative to the platforms file and defaults scopes to all three", async () => {
    const dir = await tempDir();
    const platform = await createTestPlatform("course-a");
    await mkdir(join(dir, "keys"));
    await writeFile(join(dir, "keys", "a.json"), JSON.stringify({ keys: [platform.publicJwk] }));
    await writeFile(join(dir, "platforms.json"), JSON.stringify({ platforms: [{ id: "course-a", jwksFile: "keys/a.json" }] }));
    const registry = await loadPlatformsFile(join(dir, "platforms.json"));
    const loaded = registry.get("course-a");
    expect(loaded?.jwks?.keys[0]?.x).toBe(platform.publicJwk.x);
    expect([...(loaded?.scopes ?? [])]).toEqual(["state.read", "state.write", "identity.manage"]);
    expect(loaded?.displayName).toBe("course-a");
  });

  it.each([
    ["not JSON", "{", /not valid JSON/],
    ["no platforms", { platforms: [] }, /at least one platform/],
    ["a bad id", { platforms: [{ id: "Course_A", jwks: { keys: [{ kty: "EC" }] } }] }, /platforms\.0\.id/],
    ["both jwks and jwksFile", { platforms: [{ id: "a", jwks: { keys: [{ kty: "EC" }] }, jwksFile: "x.json" }] }, /at most one/],
    ["no keys and no oidc", { platforms: [{ id: "a" }] }, /needs `jwks`, `jwksFile` or `oidc`/],
    ["an http issuer off loopback", { platforms: [{ id: "a", oidc: { ...OIDC, issuer: "http://idp.example" } }] }, /oidc\.issuer: must be https \(http only on a loopback host\)/],
    ["an ftp issuer", { platforms: [{ id: "a", oidc: { ...OIDC, issuer: "ftp://idp.example" } }] }, /oidc\.issuer: must be an https URL/],
    ["a refresh age under 1 s", { platforms: [{ id: "a", oidc: { ...OIDC, jwksRefreshMs: 999 } }] }, /oidc\.jwksRefreshMs/],
    ["a refresh age over 10 minutes", { platforms: [{ id: "a", oidc: { ...OIDC, jwksRefreshMs: 600_001 } }] }, /oidc\.jwksRefreshMs/],
    ["a staleness over 7 days", { platforms: [{ id: "a", oidc: { ...OIDC, jwksMaxStaleMs: 604_800_001 } }] }, /oidc\.jwksMaxStaleMs/],
    ["a staleness under the refresh age", { platforms: [{ id: "a", oidc: { ...OIDC, jwksRefreshMs: 5_000, jwksMaxStaleMs: 4_000 } }] }, /jwksMaxStaleMs must be at least jwksRefreshMs/],
    ["an issuer with a query", { platforms: [{ id: "a", oidc: { ...OIDC, issuer: "https://idp.example/?t=1" } }] }, /no query or fragment/],
    ["a plain-http JWKS off loopback", { platforms: [{ id: "a", oidc: { ...OIDC, jwksUri: "http://idp.example/jwks" } }] }, /http only on a loopback host/],
    ["a JWKS timeout of 0", { platforms: [{ id: "a", oidc: { ...OIDC, jwksTimeoutMs: 0 } }] }, /oidc\.jwksTimeoutMs/],
    ["a JWKS cooldown under 1 s", { platforms: [{ id: "a", oidc: { ...OIDC, jwksCooldownMs: 10 } }] }, /oidc\.jwksCooldownMs/],
    ["an unknown oidc member", { platforms: [{ id: "a", oidc: { ...OIDC, nonce: "x" } }] }, /nonce/],
    ["a missing client id", { platforms: [{ id: "a", oidc: { issuer: OIDC.issuer, jwksUri: OIDC.jwksUri } }] }, /oidc\.clientId/],
    [
      "two platforms with one issuer and client id",
      { platforms: [{ id: "a", oidc: OIDC }, { id: "b", oidc: OIDC }] },
      /platforms a and b have the same OIDC issuer and client id/,
    ],
    ["an unknown scope", { platforms: [{ id: "a", jwks: { keys: [{ kty: "EC" }] }, scopes: ["admin"] }] }, /scopes/],
    ["a private key", { platforms: [{ id: "a", jwks: { keys: [{ kty: "EC", d: "secret" }] } }] }, /private members/],
    ["a symmetric key", { platforms: [{ id: "a", jwks: { keys: [{ kty: "oct", k: "c2VjcmV0" }] } }] }, /symmetric/],
    ["an unknown member", { platforms: [{ id: "a", jwks: { keys: [{ kty: "EC" }] }, issuer: "x" }] }, /issuer/],
    [
      "a duplicate id",
      { platforms: [{ id: "a", jwks: { keys: [{ kty: "EC" }] } }, { id: "a", jwks: { keys: [{ kty: "EC" }] } }] },
      /appears twice/,
    ],
    ["a missing jwksFile", { platforms: [{ id: "a", jwksFile: "missing.json" }] }, /cannot read JWKS file of platform a/],
  ])("refuses %s with a message that says where", async (_label, content, pattern) => {
    expect(await refusal(content)).toMatch(pattern);
  });
});

describe("platforms with an OIDC provider", () => {
  it("load with the defaults, with or without keys of their own, and with only an issuer to discover", async () => {
    const dir = await tempDir();
    const platform = await createTestPlatform("course-a");
    const file = join(dir, "platforms.json");
    await writeFile(
      file,
      JSON.stringify({
        platforms: [
          { id: "oidc-only", oidc: OIDC },
          { id: "both", jwks: { keys: [platform.publicJwk] }, oidc: { ...OIDC, clientId: "other", jwksTimeoutMs: 800, jwksCooldownMs: 2000 } },
          { id: "discovered", oidc: { issuer: "http://127.0.0.1:8080/realm", clientId: "app-123", jwksRefreshMs: 1_000, jwksMaxStaleMs: 1_000 } },
        ],
      }),
    );
    const registry = await loadPlatformsFile(file);
    expect(registry.get("oidc-only")?.jwks).toBeUndefined();
    expect(registry.get("oidc-only")?.oidc).toEqual({
      issuer: OIDC.issuer,
      clientId: OIDC.clientId,
      jwksUri: new URL(OIDC.jwksUri),
      jwksTimeoutMs: 5000,
      jwksCooldownMs: 30000,
      jwksRefreshMs: 600_000,
      jwksMaxStaleMs: 86_400_000,
    });
    expect(registry.get("discovered")?.oidc).toMatchObject({ issuer: "http://127.0.0.1:8080/realm", jwksUri: undefined, jwksRefreshMs: 1_000, jwksMaxStaleMs: 1_000 });
    expect(registry.get("both")?.oidc?.jwksTimeoutMs).toBe(800);
    expect(registry.get("both")?.oidc?.jwksCooldownMs).toBe(2000);
    expect(registry.get("both")?.jwks?.keys).toHaveLength(1);
  });
});

describe("dev platforms", () => {
  it("are generated once per data directory, private keys 0600, and reused after", async () => {
    const dir = await tempDir();
    const first = await ensureDevPlatforms(dir);
    expect(first.created).toBe(true);
    expect(Object.keys(first.privateKeyFiles)).toEqual(["demo-a", "demo-b"]);
    for (const file of Object.values(first.privateKeyFiles)) {
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      expect(JSON.parse(await readFile(file, "utf8"))).toHaveProperty("d");
    }
    const registry = await loadPlatformsFile(first.platformsFile);
    expect(registry.list().map((p) => p.id)).toEqual(["demo-a", "demo-b"]);
    const before = await readFile(first.platformsFile, "utf8");
    const second = await ensureDevPlatforms(dir);
    expect(second.created).toBe(false);
    expect(await readFile(second.platformsFile, "utf8")).toBe(before);
    // Two data directories never share keys.
    const other = await ensureDevPlatforms(await tempDir());
    expect(await readFile(other.platformsFile, "utf8")).not.toBe(before);
  });
});
