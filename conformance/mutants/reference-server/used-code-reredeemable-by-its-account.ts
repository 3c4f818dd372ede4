import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "used-code-reredeemable-by-its-account",
  area: "LINK",
  caughtBy: ["link.redeemed-twice-and-by-a-linked-account"],
  description: "A used code redeemed again by an account already linked to its subject succeeds: the existing link is looked up before the code's use.",
  edits: [
    {
      file: "store/sqlite/sqlite-store.ts",
      find: "        if (code.used_at !== null) return { kind: \"invalid\" };\n",
      replace: "        if (code.used_at !== null && stmt(\"SELECT 1 FROM account_links WHERE platform_id = ? AND account_id = ? AND subject_id = ?\").get(input.platformId, input.accountId, code.subject_id) === undefined) return { kind: \"invalid\" };\n",
    },
  ],
});
