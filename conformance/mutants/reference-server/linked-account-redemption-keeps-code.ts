import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "linked-account-redemption-keeps-code",
  area: "LINK",
  caughtBy: ["link.redeemed-twice-and-by-a-linked-account"],
  description: "A redemption by an account already linked to the code's subject returns the link without consuming the code.",
  edits: [
    {
      file: "store/sqlite/sqlite-store.ts",
      find: "        stmt(\"UPDATE link_codes SET used_at = ? WHERE code_hash = ?\").run(now, input.codeHash);\n        if (existing !== undefined) return { kind: \"linked\", link: toLink(existing) };\n",
      replace: "        if (existing !== undefined) return { kind: \"linked\", link: toLink(existing) };\n        stmt(\"UPDATE link_codes SET used_at = ? WHERE code_hash = ?\").run(now, input.codeHash);\n",
    },
  ],
});
