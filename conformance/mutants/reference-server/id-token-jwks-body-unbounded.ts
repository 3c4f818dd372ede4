import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "id-token-jwks-body-unbounded",
  area: "TOKEN",
  caughtBy: ["oidc.jwks-size-and-key-count-capped"],
  description: "A JWKS body is read to its end however large it grows, so a provider can make the server hold gigabytes.",
  edits: [
    { file: "auth/provider-documents.ts", find: "        if (size > PROVIDER_DOCUMENT_MAX_BYTES) throw", replace: "        if (false) throw" },
  ],
});
