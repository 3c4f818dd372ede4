import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "id-token-kid-less-tries-every-key",
  area: "TOKEN",
  caughtBy: ["oidc.id-token-without-kid"],
  description: "An ID token without kid is tried against every key of the JWKS that fits its alg, and taken when one verifies.",
  edits: [
    { file: "auth/id-tokens.ts", find: "  jwtVerify,\n", replace: "  jwtVerify,\n  flattenedVerify,\n" },
    { file: "auth/id-tokens.ts", find: "      if (!(error instanceof joseErrors.JWKSNoMatchingKey)) throw error;\n", replace: "      if (error instanceof joseErrors.JWKSMultipleMatchingKeys) {\n        for await (const key of error as unknown as AsyncIterable<CryptoKey>) {\n          try {\n            await flattenedVerify(token, key);\n            return key;\n          } catch {}\n        }\n      }\n      if (!(error instanceof joseErrors.JWKSNoMatchingKey)) throw error;\n" },
  ],
});
