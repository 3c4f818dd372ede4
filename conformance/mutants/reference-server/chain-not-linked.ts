import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "chain-not-linked",
  area: "HASH",
  caughtBy: ["hash.canonical-json-vectors"],
  description: "Each delta hash uses the genesis hash as prev_hash instead of the previous delta's.",
  edits: [
    {
      file: "services/stream-service.ts",
      find:
        "    const hash = deltaHash({\n" +
        "      prevHash,\n",
      replace:
        "    const hash = deltaHash({\n" +
        "      prevHash: stream.genesisHash,\n",
    },
  ],
});
