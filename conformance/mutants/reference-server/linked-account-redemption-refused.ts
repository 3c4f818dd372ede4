import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "linked-account-redemption-refused",
  area: "LINK",
  caughtBy: ["consent-edges.successful-redemptions-not-counted"],
  description: "A redemption by an account already linked to the code's subject fails with ACCOUNT_LINKED_ELSEWHERE instead of returning the existing link.",
  edits: [
    {
      file: "store/sqlite/sqlite-store.ts",
      find: "        if (existing !== undefined && existing.subject_id !== code.subject_id) return { kind: \"linked-elsewhere\" };",
      replace: "        if (existing !== undefined) return { kind: \"linked-elsewhere\" };",
    },
  ],
});
