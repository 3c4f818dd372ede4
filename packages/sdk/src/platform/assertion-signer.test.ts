import { decodeProtectedHeader, exportJWK, generateKeyPair, jwtVerify } from "jose";
import { describe, expect, it } from "vitest";
import { Status } from "nice-grpc-common";
import { createAssertionSigner } from "./index.js";

// What the reference server checks of an assertion (token-authority.ts), checked here with
// jose on the signer's output; the SDK's integration tests exchange these for real tokens.

describe("createAssertionSigner", () => {
  it.each(["ES256", "EdDSA", "RS256"] as const)("signs a %s assertion the server's checks accept", async (algorithm) => {
    const { publicKey, privateKey } = await generateKeyPair(algorithm, { extractable: true });
    const jwk = { ...(await exportJWK(privateKey)), kid: "key-1" };
    const signer = await createAssertionSigner({ platformId: "acme", privateKey: jwk, audience: "continuity-test", lifetimeSeconds: 60 });
    const assertion = await signer.sign("user-42");
    expect(decodeProtectedHeader(assertion)).toEqual({ alg: algorithm, typ: "continuity-assertion+jwt", kid: "key-1" });
    const { payload } = await jwtVerify(assertion, publicKey, {
      algorithms: [algorithm],
      typ: "continuity-assertion+jwt",
      issuer: "acme",
      audience: "continuity-test",
      maxTokenAge: 300,
      requiredClaims: ["iss", "sub", "aud", "iat", "exp", "jti"],
    });
    expect(payload.sub).toBe("user-42");
    expect(payload.exp! - payload.iat!).toBe(60);
    expect(Math.abs(payload.iat! - Date.now() / 1000)).toBeLessThan(5);
    expect(payload.jti).not.toBe((await jwtVerify(await signer.sign("user-42"), publicKey)).payload.jti);
  });

  it("signs with a key object when told the algorithm and key id", async () => {
    const { publicKey, privateKey } = await generateKeyPair("ES256");
    const signer = await createAssertionSigner({ platformId: "acme", privateKey, algorithm: "ES256", keyId: "k2" });
    const assertion = await signer.sign("ana");
    expect(decodeProtectedHeader(assertion).kid).toBe("k2");
    expect((await jwtVerify(assertion, publicKey, { audience: "continuity" })).payload.sub).toBe("ana");
  });

  it("refuses what the server would refuse, before anything is signed", async () => {
    const { publicKey, privateKey } = await generateKeyPair("ES256", { extractable: true });
    const privateJwk = await exportJWK(privateKey);
    const invalid = { name: "ContinuityError", code: Status.INVALID_ARGUMENT };
    await expect(createAssertionSigner({ platformId: "acme", privateKey: await exportJWK(publicKey) })).rejects.toMatchObject(invalid);
    await expect(createAssertionSigner({ platformId: "acme", privateKey: privateJwk, lifetimeSeconds: 301 })).rejects.toMatchObject(invalid);
    await expect(createAssertionSigner({ platformId: "acme", privateKey })).rejects.toMatchObject(invalid);
    await expect(createAssertionSigner({ platformId: "acme", privateKey: { ...privateJwk, alg: "HS256" } })).rejects.toMatchObject(invalid);
    const signer = await createAssertionSigner({ platformId: "acme", privateKey: privateJwk });
    await expect(signer.sign("")).rejects.toMatchObject(invalid);
    await expect(signer.sign("x".repeat(256))).rejects.toMatchObject(invalid);
  });
});
