import { describe, expect, it } from "vitest";
import { ALL_CASES } from "../src/cases/index.js";
import { loadRequirements } from "../src/runner/requirements.js";

// The suite's promise is that every requirement of the spec is proven over the wire. These
// tests keep the promise honest as the spec and the cases evolve.
describe("requirement coverage", () => {
  it("names only requirement IDs that the spec defines", async () => {
    const requirements = await loadRequirements();
    expect(requirements.sha256, "docs/spec/requirements.json must exist").toBeDefined();
    const unknown = ALL_CASES.flatMap((c) => c.requirements.filter((id) => !requirements.byId.has(id)).map((id) => `${c.id} -> ${id}`));
    expect(unknown).toEqual([]);
  });

  it("proves every MUST requirement with at least one case", async () => {
    const requirements = await loadRequirements();
    const named = new Set(ALL_CASES.flatMap((c) => c.requirements));
    const uncovered = [...requirements.byId.values()].filter((r) => r.level === "MUST" && !named.has(r.id)).map((r) => `${r.id} (${r.file})`);
    expect(uncovered).toEqual([]);
  });

  it("puts each case in the profile of the requirements it proves", async () => {
    const requirements = await loadRequirements();
    const mismatched = ALL_CASES.filter((c) => {
      const profiles = new Set(c.requirements.map((id) => requirements.byId.get(id)?.profile).filter((p) => p !== undefined));
      // A case may prove core requirements from inside a richer profile, never the reverse.
      return c.profile === "core" && [...profiles].some((p) => p !== "core");
    }).map((c) => c.id);
    expect(mismatched).toEqual([]);
  });
});
