import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "auth-facts-outlive-writes",
  area: "AUTH",
  caughtBy: ["device.revocation-ends-tokens-and-subscriptions"],
  description: "The store keeps the devices, account links and grants it remembered for the auth checks after a write changed them.",
  edits: [{ file: "store/sqlite/sqlite-store.ts", find: "    facts.clear();\n    const sink: EventSink = [];\n", replace: "    const sink: EventSink = [];\n" }],
});
