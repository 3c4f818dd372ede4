import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "id-token-discovery-issuer-unchecked",
  area: "TOKEN",
  caughtBy: ["oidc.discovery"],
  description: "A discovery document is believed whatever issuer it names, so one provider's document can name another's keys.",
  edits: [
    { file: "auth/provider-documents.ts", find: "  if (document.issuer !== issuer) {", replace: "  if (false) {" },
  ],
});
