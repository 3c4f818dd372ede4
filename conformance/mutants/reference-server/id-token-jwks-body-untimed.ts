import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "id-token-jwks-body-untimed",
  area: "TOKEN",
  caughtBy: ["oidc.jwks-trickling-body-times-out"],
  description: "The JWKS fetch timeout ends once the headers arrive, so a body that trickles in holds the exchange forever.",
  edits: [
    { file: "auth/provider-documents.ts", find: "    const response = await fetch(url, { signal: controller.signal, redirect: \"manual\", headers: { accept: \"application/json\" } });\n", replace: "    const response = await fetch(url, { signal: controller.signal, redirect: \"manual\", headers: { accept: \"application/json\" } });\n    clearTimeout(timer);\n" },
  ],
});
