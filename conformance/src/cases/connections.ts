import { ClientError } from "nice-grpc-common";
import { defineCase } from "../harness/define-case.js";
import { check, checkEqual, fail, Status } from "../harness/expect.js";
import { openSubscription } from "../harness/subscription.js";

/** Cancelled calls of LIMIT-031: past nghttp2's rapid-reset budget of 1,000, and past any "about 1,000". */
const CANCELLED_CALLS = 1_500;

/** Whether `error` is the end of a call this client cancelled itself. */
const isOwnCancel = (error: unknown): boolean =>
  (error instanceof Error && error.name === "AbortError") || (error instanceof ClientError && error.code === Status.CANCELLED);

/** How connections are bounded without breaking the clients on them (limits.md, "Connections"). */
export const CONNECTION_CASES = [
  defineCase({
    id: "limit.hundred-calls-on-one-connection",
    requirements: ["LIMIT-030"],
    profile: "core",
    timeoutMs: 60_000,
    async run(ctx) {
      const session = await ctx.session();
      // Every client of a case shares one channel, so these are 100 streams on one connection;
      // with fewer allowed, the last ones would wait for a free stream and never get `ready`.
      const readers = Array.from({ length: 100 }, () => openSubscription(session));
      try {
        const ready = await Promise.allSettled(readers.map((reader) => reader.expectEvent("ready", { timeoutMs: 20_000 })));
        const missing = ready.filter((outcome) => outcome.status === "rejected").length;
        checkEqual(missing, 0, "subscriptions of 100 open on one connection that never got ready");
      } finally {
        for (const reader of readers) reader.close();
      }
    },
  }),
  defineCase({
    id: "limit.cancelled-calls-keep-connection",
    requirements: ["LIMIT-031"],
    profile: "core",
    // 1,500 subscriptions in a few seconds load the whole server; alone, they slow no other case.
    exclusive: true,
    timeoutMs: 180_000,
    async run(ctx) {
      const session = await ctx.session();
      const live = openSubscription(session);
      try {
        await live.expectEvent("ready");
        // In rounds of 25 at once: as fast as a client that resubscribes a lot may go.
        for (let round = 0; round < CANCELLED_CALLS / 25; round++) {
          const readers = Array.from({ length: 25 }, () => openSubscription(session));
          await Promise.all(readers.map((reader) => reader.expectEvent("ready", { timeoutMs: 10_000 })));
          for (const reader of readers) reader.close();
          for (const [i, reader] of readers.entries()) {
            const ended = await reader.ended(10_000);
            if (!isOwnCancel(ended)) fail(`subscription ${round * 25 + i + 1} of ${CANCELLED_CALLS}, cancelled after ready, ended with ${String(ended)} instead of the client's own cancel`);
          }
        }
        // The subscription that stayed open all along must still be live, not ended by the server.
        const liveState = await live.ended(300).then(
          (error: unknown) => `ended (${String(error)})`,
          () => "open",
        );
        checkEqual(liveState, "open", `a subscription open on the same connection through ${CANCELLED_CALLS} cancellations`);
        const info = await ctx.clients().serverInfo.getServerInfo({});
        check(info.limits !== undefined, `a call after ${CANCELLED_CALLS} cancelled subscriptions works`);
      } finally {
        live.close();
      }
      ctx.note(`${CANCELLED_CALLS} subscriptions cancelled after ready on one connection; a live one stayed up`);
    },
  }),
];
