// Prints the conformance suite's case list as JSON, `[{ id, profile, requirements }]` in
// report order, for tools that cite cases (the documentation site shows, under every
// requirement, the cases that test it). It imports the suite's own list, so a case can
// never be missing from what it prints.
//
//   node --conditions=source --import tsx scripts/conformance-cases.ts
import { ALL_CASES } from "../conformance/src/cases/index.js";

const cases = ALL_CASES.map(({ id, profile, requirements }) => ({ id, profile, requirements: [...requirements] }));
process.stdout.write(`${JSON.stringify(cases)}\n`);
