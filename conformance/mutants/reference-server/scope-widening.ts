import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "scope-widening",
  area: "TOKEN",
  caughtBy: ["token.scope-never-widened"],
  description: "Token exchange grants scopes beyond the platform's configuration, and tokens keep them.",
  edits: [
    { file: "services/token-service.ts", find: "        if (beyond.length > 0) {\n", replace: "        if (false) {\n" },
    {
      file: "auth/middleware.ts",
      find: "new Set<Scope>([...claims.scopes].filter((scope) => platform.scopes.has(scope)))",
      replace: "new Set<Scope>(claims.scopes)",
    },
  ],
});
