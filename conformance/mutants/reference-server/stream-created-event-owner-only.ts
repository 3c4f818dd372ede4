import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "stream-created-event-owner-only",
  area: "SUB",
  caughtBy: ["subscription.revocations-of-others-leave-the-feed-open"],
  description: "StreamCreated goes only to the owner platform's subscriptions; grantees learn of a new covered stream from its first deltas.",
  edits: [
    {
      file: "services/subscription-service.ts",
      find: "    case \"stream-created\":\n      if (!(await mayRead(context, body.stream))) return SKIP;",
      replace: "    case \"stream-created\":\n      if (body.stream.ownerPlatformId !== context.auth.platformId) return SKIP;",
    },
  ],
});
