import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "unlink-leaves-subscriptions-open",
  area: "SUB",
  caughtBy: ["live-feed.unlinked-platform-subscription-ends"],
  description: "Deleting a platform's account link leaves that platform's open subscriptions running (SUB-043).",
  edits: [
    {
      file: "events/event-hub.ts",
      find: "      const item: HubItem = { kind: \"account-link-deleted\", platformId: notification.platformId };\n      for (const deliver of targets) deliver(item);\n",
      replace: "",
    },
  ],
});
