import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "grant-stream-type-unchecked",
  area: "GRANT",
  caughtBy: ["identity.three-platforms-share-devices-links-and-handoffs"],
  description: "CreateGrant takes any stream_type, even one no stream can have.",
  edits: [
    {
      file: "services/consent-service.ts",
      find: "      streamType: z.string().refine((value) => value === \"*\" || STREAM_TYPE.test(value), \"a stream type (reverse-DNS) or *\"),",
      replace: "      streamType: z.string(),",
    },
  ],
});
