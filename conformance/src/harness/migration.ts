import { continuity } from "@continuity/sdk/gen";
import { TOKEN_EXCHANGE, type CaseContext, type Session } from "./context.js";
import { fail } from "./expect.js";

const v1 = continuity.v1;

/** A server the case started beside the one under test (spawn mode). */
export type SecondServer = Awaited<ReturnType<CaseContext["startSecondServer"]>>;

/** A session on `server` for `source`'s account and device (its own subject there). */
export async function sessionOn(ctx: CaseContext, server: SecondServer, source: Session): Promise<{ subject: string; clients: ReturnType<CaseContext["clients"]> }> {
  const exchange = await server.clients().tokens.exchangeToken({ grantType: TOKEN_EXCHANGE.grantType, subjectToken: await ctx.mintAssertion({ platform: source.platform, accountId: source.accountId }), subjectTokenType: TOKEN_EXCHANGE.subjectTokenType, scope: "", deviceId: source.deviceId, deviceDisplayName: "" });
  return { subject: exchange.subject, clients: server.clients(exchange.accessToken) };
}

/** Polls GetMigration (there is no event for it) until the migration has ended. */
export async function migrationEnded(ctx: CaseContext, clients: ReturnType<CaseContext["clients"]>, name: string, limitMs = 60_000): Promise<continuity.v1.Migration> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const { migration } = await clients.portability.getMigration({ name });
    if (migration === undefined) return fail("GetMigration must return the migration");
    const state = migration.state;
    if (state === v1.MigrationState.MIGRATION_STATE_COMPLETED || state === v1.MigrationState.MIGRATION_STATE_FAILED || state === v1.MigrationState.MIGRATION_STATE_CANCELLED) return migration;
    if (Date.now() > deadline) return fail(`the migration did not end in ${limitMs / 1000} s (state ${state})`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    ctx.signal.throwIfAborted();
  }
}
