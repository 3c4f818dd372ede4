import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "migration-tls-verifies-dialed-address",
  area: "PORT",
  caughtBy: ["portability-switch.tls-source-verified-as-named"],
  description: "A target dialing an https:// source named by host sends, and verifies the certificate for, the address it dialed instead of the name (PORT-055, PORT-040).",
  edits: [
    {
      file: "services/portability/source-client.ts",
      find: "    ...(tls && isIP(source.host) === 0 ? { \"grpc.ssl_target_name_override\": source.host } : {}),\n",
      replace: "",
    },
  ],
});
