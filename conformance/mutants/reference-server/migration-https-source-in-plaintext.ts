import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "migration-https-source-in-plaintext",
  area: "PORT",
  caughtBy: ["portability.https-source-is-never-plaintext"],
  description: "A migration's target dials an https:// source in plaintext, sending the person's access token and records unencrypted.",
  edits: [
    {
      file: "services/portability/source-client.ts",
      find: "tls ? grpc.credentials.createSsl(ca ?? null) : grpc.credentials.createInsecure()",
      replace: "grpc.credentials.createInsecure()",
    },
  ],
});
