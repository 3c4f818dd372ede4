/**
 * A migration's source named by a host name (PORT-041), and a live migration's switch when
 * one of its messages is lost on the way (PORT-052): the
 * source's `committed` answer, after the source recorded the move, and the target's
 * `commit`, before the source saw it. A proxy in front of the server under test
 * (portability/source-proxy.ts) plays the network; the server is both source and target.
 */
import { continuity } from "@continuity/sdk/gen";
import type { CaseContext, Session } from "../harness/context.js";
import { migrationEnded, sessionOn, type SecondServer } from "../harness/migration.js";
import { defineCase } from "../harness/define-case.js";
import { check, checkBytes, checkEqual, checkError, fail, Status } from "../harness/expect.js";
import { append, createStream, ENCODING } from "../harness/streams.js";
import { startSourceProxy, type SourceProxy, type SourceProxyOptions, type SwitchFault } from "../portability/source-proxy.js";
import { lookup } from "node:dns/promises";
import { createServer } from "node:net";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sourceCertificates, startTlsFront, type TlsFront } from "../portability/tls-front.js";

const v1 = continuity.v1;
/** A subject with one stream of three deltas, migrated to `second` through a proxy that loses one message of the switch. */
async function migrateThrough(ctx: CaseContext, second: SecondServer, fault: SwitchFault, options: SourceProxyOptions & { readonly named?: (port: string) => string | Promise<string> } = {}) {
  const source = await ctx.session();
  const stream = await createStream(ctx, source, { encoding: ENCODING.mergePatch, streamId: "moving" });
  let head: continuity.v1.AppendDeltasResponse | undefined;
  for (let seq = 1; seq <= 3; seq++) head = await append(source, stream.name, [{ n: seq }], { clientSequence: seq });
  const target = await sessionOn(ctx, second, source);
  const proxy = await startSourceProxy(ctx, fault, options);
  try {
    const named = (await options.named?.(proxy.address.slice(proxy.address.lastIndexOf(":") + 1))) ?? proxy.address;
    const { migration } = await target.clients.portability.createMigration({ parent: target.subject, source: named, sourceAccessToken: source.token, sourceSubject: "" });
    if (migration === undefined) return fail("CreateMigration must return the migration");
    const ended = await migrationEnded(ctx, target.clients, migration.name, 30_000);
    ctx.note(`${fault}: the migration ended in state ${v1.MigrationState[ended.state]} (${JSON.stringify(ended.error)}) after ${proxy.switches.length} switch(es)`);
    // Every switch's call ends (whoever ends it) before the proxy goes: the source lets the
    // held writes go at its hold limit at the latest (PORT-039).
    const bound = Date.now() + 30_000;
    while (proxy.switches.some((s) => s.endedBy === undefined) && Date.now() < bound) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      ctx.signal.throwIfAborted();
    }
    return { source, stream, head: head!, target, ended, named, switches: proxy.switches, authorities: proxy.authorities, partBytes: proxy.partBytes() };
  } finally {
    proxy.close();
  }
}

/** Polls GetMigration until a migration the case expects to fail has ended, and checks that it failed. */
/**
 * Starts a migration from `source` to `target` through `proxy` (which holds the switch after
 * its manifest) and waits until the target reports it SWITCHING while the switch is held:
 * the source holds the subject's writes and the target waits for the rest of the switch's
 * bundle. Returns the migration's name.
 */
async function migrateIntoHeldSwitch(ctx: CaseContext, source: Session, target: Awaited<ReturnType<typeof sessionOn>>, proxy: SourceProxy): Promise<string> {
  const { migration } = await target.clients.portability.createMigration({ parent: target.subject, source: proxy.address, sourceAccessToken: source.token, sourceSubject: "" });
  if (migration === undefined) return fail("CreateMigration must return the migration");
  const deadline = Date.now() + 30_000;
  let current = migration;
  while (current.state !== v1.MigrationState.MIGRATION_STATE_SWITCHING || (proxy.switches[0]?.forwarded ?? 0) < 1) {
    if (current.state !== v1.MigrationState.MIGRATION_STATE_COPYING && current.state !== v1.MigrationState.MIGRATION_STATE_SWITCHING) return fail(`a migration whose switch waits must be COPYING, then SWITCHING, got ${v1.MigrationState[current.state]}: ${current.error}`);
    if (Date.now() > deadline) return fail(`a migration whose switch began (the proxy forwarded ${proxy.switches[0]?.forwarded ?? 0} of its answers) must report MIGRATION_STATE_SWITCHING (PORT-030), got ${v1.MigrationState[current.state]}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
    ctx.signal.throwIfAborted();
    current = (await target.clients.portability.getMigration({ name: migration.name })).migration!;
  }
  return migration.name;
}

async function expectFailed(ctx: CaseContext, session: Session, migration: continuity.v1.Migration | undefined, what: string): Promise<continuity.v1.Migration> {
  if (migration === undefined) return fail(`${what}: CreateMigration must return the migration`);
  const ended = await migrationEnded(ctx, session.clients, migration.name, 30_000);
  checkEqual(ended.state, v1.MigrationState.MIGRATION_STATE_FAILED, `${what}: the migration must fail (PORT-035), got error ${JSON.stringify(ended.error)}`);
  return ended;
}

export const PORTABILITY_SWITCH_CASES = [
  defineCase({
    id: "portability-switch.source-named-by-host",
    requirements: ["PORT-040", "PORT-041", "PORT-035"],
    profile: "portability",
    timeoutMs: 60_000,
    async run(ctx) {
      const person = await ctx.session();
      // A name that never resolves (RFC 6761 reserves .invalid) is a source that cannot be
      // reached: the migration's failure, not CreateMigration's.
      const { migration: nowhere } = await person.clients.portability.createMigration({ parent: person.subject, source: "source.invalid:50051", sourceAccessToken: "token-never-sent", sourceSubject: "" });
      const unresolved = await expectFailed(ctx, person, nowhere, "a source whose host name does not resolve");
      check(unresolved.error !== "", "Migration.error must say why a source that cannot be resolved failed the migration");
      // A host name is dialed at the address it resolves to. The suite's servers may dial
      // loopback sources in spawn mode (CONTINUITY_MIGRATION_SOURCES), so `localhost` names this server when it resolves
      // only to the loopback address the server listens on.
      const address = ctx.address();
      const here = /^127\.0\.0\.1:(\d+)$/.exec(address);
      const resolved = await lookup("localhost", { all: true }).catch(() => []);
      if (!ctx.canStartSecondServer || here === null || resolved.length === 0 || resolved.some((a) => a.address !== "127.0.0.1")) {
        ctx.note(`localhost resolves to ${JSON.stringify(resolved.map((a) => a.address))} and the server is at ${address}${ctx.canStartSecondServer ? "" : ", attached (its migration sources are its operator's)"}: no source is named by host here`);
        return;
      }
      const { migration: named } = await person.clients.portability.createMigration({ parent: person.subject, source: `localhost:${here[1]}`, sourceAccessToken: "not-a-token", sourceSubject: "" });
      const refused = await expectFailed(ctx, person, named, "a source named localhost that refuses the token");
      check(/UNAUTHENTICATED|TOKEN_INVALID/.test(refused.error), `Migration.error must name the source's answer (UNAUTHENTICATED / TOKEN_INVALID): the source named localhost was dialed, got ${JSON.stringify(refused.error)}`);
    },
  }),

  defineCase({
    id: "portability-switch.lost-commit-messages",
    requirements: ["PORT-052", "PORT-034", "PORT-039", "PORT-030", "PORT-046"],
    profile: "portability",
    needs: ["second-server"],
    timeoutMs: 60_000,
    async run(ctx) {
      const second = await ctx.startSecondServer();

      // The source recorded the move, and its `committed` answer never reached the target:
      // the source's SUBJECT_MOVED naming the target tells the target that the switch happened.
      const lost = await migrateThrough(ctx, second, "lose-committed");
      if (!lost.switches.some((s) => s.committed)) return fail(`the migration must reach its switch and the source commit it, got state ${v1.MigrationState[lost.ended.state]}: ${lost.ended.error}`);
      checkEqual(lost.ended.state, v1.MigrationState.MIGRATION_STATE_COMPLETED, `a migration whose source moved the subject, its committed answer lost, must complete (the source answers SUBJECT_MOVED naming the target), got error ${JSON.stringify(lost.ended.error)}`);
      checkEqual([lost.ended.recordsTotal, lost.ended.lagDeltas, lost.ended.error], [lost.ended.recordsCopied, 0n, ""], "a completed migration (PORT-046): records_total equal to records_copied, no lag, no error");
      const { stream: there } = await lost.target.clients.streams.getStream({ name: `${lost.target.subject}/streams/moving` });
      checkEqual([there?.uid, there?.headVersion], [lost.stream.uid, 3n], "the migrated stream on the target");
      checkBytes(there?.headHash, lost.head.headHash, "its head hash on the target");
      const redirect = await lost.source.clients.streams.getStream({ name: lost.stream.name }).then(() => undefined, (error: unknown) => error);
      if (redirect === undefined) return fail("the source must answer SUBJECT_MOVED after the switch it committed, but it served the stream");
      checkError(redirect, { code: Status.FAILED_PRECONDITION, reason: "SUBJECT_MOVED", metadata: { subject: lost.target.subject } }, "the source after the switch it committed");

      // The target's `commit` never reached the source, which let the switch go (PORT-039)
      // and kept serving, and the source cannot be asked again: the target must not take the
      // subject as moved.
      const dropped = await migrateThrough(ctx, second, "drop-commit");
      check(dropped.switches.length > 0 && !dropped.switches.some((s) => s.committed), "the proxy must have ended a switch before the source committed it");
      checkEqual(dropped.ended.state, v1.MigrationState.MIGRATION_STATE_FAILED, "a migration whose switch ended before the source answered committed, the source still serving, must fail");
      check(dropped.ended.error !== "", "Migration.error of a failed migration must say why");
      const written = await append(dropped.source, dropped.stream.name, [{ n: 4 }], { clientSequence: 4 });
      checkEqual(written.headVersion, 4n, "the source still takes the subject's writes after a switch it never committed");
    },
  }),

  defineCase({
    id: "portability-switch.source-named-as-given",
    requirements: ["PORT-055", "PORT-041", "PORT-031", "PORT-046"],
    profile: "portability",
    needs: ["second-server"],
    timeoutMs: 90_000,
    async run(ctx) {
      const second = await ctx.startSecondServer();
      // Named by host, dialed at the address it resolves to (localhost, when it resolves only to
      // 127.0.0.1: the suite's servers may dial loopback sources), and named by an IPv6 literal:
      // each of the target's calls names the source as the client did.
      const resolved = await lookup("localhost", { all: true }).catch(() => []);
      const byName = resolved.length > 0 && resolved.every((a) => a.address === "127.0.0.1");
      if (!byName) ctx.note(`localhost resolves to ${JSON.stringify(resolved.map((a) => a.address))}: the source is named by its address, not by host`);
      const ways: { readonly options: SourceProxyOptions & { readonly named?: (port: string) => string }; readonly what: string }[] = [
        // The source's committed answer says 2.5 s (as a slow switch would): the target reports it.
        { options: { pause: { seconds: 2n, nanos: 500_000_000 }, ...(byName ? { named: (port: string) => `localhost:${port}` } : {}) }, what: byName ? "a source named localhost" : "a source named 127.0.0.1" },
      ];
      const v6 = await new Promise<boolean>((resolve) => {
        const probe = createServer();
        probe.once("error", () => resolve(false));
        probe.listen(0, "::1", () => probe.close(() => resolve(true)));
      });
      if (v6) ways.push({ options: { host: "::1" }, what: "a source named [::1]" });
      else ctx.note("no IPv6 loopback here: no source is named by an IPv6 literal");
      for (const { options, what } of ways) {
        const moved = await migrateThrough(ctx, second, "none", options);
        checkEqual(moved.ended.state, v1.MigrationState.MIGRATION_STATE_COMPLETED, `a migration from ${what} (${moved.named}) must complete, got error ${JSON.stringify(moved.ended.error)}`);
        checkEqual(moved.ended.source, moved.named, `Migration.source of ${what}, as CreateMigration named it (PORT-046)`);
        const { stream: there } = await moved.target.clients.streams.getStream({ name: `${moved.target.subject}/streams/moving` });
        checkEqual([there?.uid, there?.headVersion], [moved.stream.uid, 3n], `the stream migrated from ${what}`);
        check(moved.authorities.length >= 2, `the target must call ${what} (ExportSubject, TransferSubject), the proxy took ${moved.authorities.length} call(s)`);
        const others = moved.authorities.filter((a) => a !== moved.named);
        checkEqual(others, [], `the :authority of every call to ${what} must be ${moved.named}, as the client named it (PORT-055)`);
        checkEqual(moved.ended.bytesCopied, BigInt(moved.partBytes), `bytes_copied of the migration from ${what}: the bytes of the bundle parts it took (PORT-046)`);
        if (options.pause !== undefined) checkEqual([moved.ended.switchPause?.seconds, moved.ended.switchPause?.nanos], [2n, 500_000_000], `switch_pause of the migration from ${what}: the pause of the source's committed answer (PORT-046)`);
      }
    },
  }),

  defineCase({
    id: "portability-switch.moved-answer-among-other-details",
    requirements: ["PORT-053", "PORT-052"],
    profile: "portability",
    needs: ["second-server"],
    timeoutMs: 60_000,
    async run(ctx) {
      const second = await ctx.startSecondServer();
      // The source's `committed` is lost, and its SUBJECT_MOVED comes with a LocalizedMessage
      // detail before its ErrorInfo: the target must still read it as SUBJECT_MOVED.
      const lost = await migrateThrough(ctx, second, "lose-committed", { detailFirst: true });
      if (!lost.switches.some((s) => s.committed)) return fail(`the migration must reach its switch and the source commit it, got state ${v1.MigrationState[lost.ended.state]}: ${lost.ended.error}`);
      checkEqual(lost.ended.state, v1.MigrationState.MIGRATION_STATE_COMPLETED, `a migration whose source moved the subject, its committed answer lost and its SUBJECT_MOVED's ErrorInfo after another detail, must complete, got error ${JSON.stringify(lost.ended.error)}`);
      const { stream: there } = await lost.target.clients.streams.getStream({ name: `${lost.target.subject}/streams/moving` });
      checkEqual([there?.uid, there?.headVersion], [lost.stream.uid, 3n], "the migrated stream on the target");
    },
  }),

  defineCase({
    id: "portability-switch.refused-switch-ends-the-call",
    requirements: ["PORT-054", "PORT-034", "PORT-039", "PORT-050"],
    profile: "portability",
    needs: ["second-server"],
    timeoutMs: 90_000,
    async run(ctx) {
      const second = await ctx.startSecondServer();
      // The switch's bundle counts one record more in its trailer than it carries: the target
      // must refuse it, fail the migration, and end the call itself, so that the source lets
      // the held writes go at once rather than at its hold limit.
      const refused = await migrateThrough(ctx, second, "tamper-trailer");
      if (refused.switches.length === 0) return fail(`the migration must reach its switch, got state ${v1.MigrationState[refused.ended.state]}: ${refused.ended.error}`);
      check(!refused.switches.some((s) => s.committed), "the source must not commit a switch whose bundle the target refused");
      checkEqual(refused.ended.state, v1.MigrationState.MIGRATION_STATE_FAILED, "a migration whose switch bundle is refused must fail");
      check(refused.ended.error !== "", "Migration.error of a failed migration must say why");
      checkEqual(refused.switches.map((s) => s.endedBy ?? "nobody"), refused.switches.map(() => "target"), "the target must end its TransferSubject call when it refuses the switch's bundle (PORT-054), not leave it to the source's hold limit");
      const written = await append(refused.source, refused.stream.name, [{ n: 4 }], { clientSequence: 4 });
      checkEqual(written.headVersion, 4n, "the source takes the subject's writes after the refused switch (PORT-039)");
    },
  }),

  defineCase({
    id: "portability-switch.cancel-ends-the-copy",
    requirements: ["PORT-056", "PORT-057", "PORT-037", "PORT-030"],
    profile: "portability",
    needs: ["second-server"],
    timeoutMs: 90_000,
    async run(ctx) {
      const second = await ctx.startSecondServer();
      const source = await ctx.session();
      // Two streams: one of three deltas, one of four compacted below version 2 (its full
      // export brings a snapshot record at the horizon and the deltas above it).
      const plain = await createStream(ctx, source, { encoding: ENCODING.mergePatch, streamId: "plain" });
      for (let seq = 1; seq <= 3; seq++) await append(source, plain.name, [{ n: seq }], { clientSequence: seq });
      const compacted = await createStream(ctx, source, { encoding: ENCODING.mergePatch, streamId: "compacted" });
      for (let seq = 1; seq <= 4; seq++) await append(source, compacted.name, [{ n: seq }], { clientSequence: seq });
      await source.clients.streams.compactStream({ stream: compacted.name, horizonVersion: 2n });
      const target = await sessionOn(ctx, second, source);
      const proxy = await startSourceProxy(ctx, "none", { holdExport: true });
      let name = "";
      try {
        const { migration } = await target.clients.portability.createMigration({ parent: target.subject, source: proxy.address, sourceAccessToken: source.token, sourceSubject: "" });
        if (migration === undefined) return fail("CreateMigration must return the migration");
        name = migration.name;
        // The copy has read its manifest (the proxy holds the rest): 2 stream records, 3 + 2
        // delta records, 1 snapshot record announced.
        const deadline = Date.now() + 30_000;
        let copying = migration;
        while (proxy.exports[0] === undefined || proxy.exports[0].forwarded < 1 || copying.recordsTotal === 0n) {
          if (copying.state !== v1.MigrationState.MIGRATION_STATE_COPYING) return fail(`a migration whose copy waits must stay COPYING, got ${v1.MigrationState[copying.state]}: ${copying.error}`);
          if (Date.now() > deadline) return fail(`the target must read the copy's manifest and report records_total (PORT-057), got ${copying.recordsTotal} after ${proxy.exports[0]?.forwarded ?? 0} part(s)`);
          await new Promise((resolve) => setTimeout(resolve, 20));
          ctx.signal.throwIfAborted();
          copying = (await target.clients.portability.getMigration({ name: migration.name })).migration!;
        }
        checkEqual(copying.state, v1.MigrationState.MIGRATION_STATE_COPYING, "a migration whose copy waits after its manifest");
        check(copying.recordsTotal >= 8n, `records_total once the manifest is read must count at least its 2 stream, 5 delta and 1 snapshot records (PORT-057), got ${copying.recordsTotal}`);
        check(copying.lagDeltas >= 5n, `lag_deltas before any of the 5 announced deltas is stored must be at least 5 (PORT-057), got ${copying.lagDeltas}`);
        const { migration: cancelled } = await target.clients.portability.cancelMigration({ name: migration.name });
        checkEqual(cancelled?.state, v1.MigrationState.MIGRATION_STATE_CANCELLED, "CancelMigration of a migration still copying (PORT-037)");
        checkEqual(cancelled?.error, "", "Migration.error of a cancelled migration (PORT-037)");
        // The copy's ExportSubject, still held by the proxy, must be ended by the target.
        const bound = Date.now() + 15_000;
        while (proxy.exports[0]!.endedBy === undefined && Date.now() < bound) {
          await new Promise((resolve) => setTimeout(resolve, 20));
          ctx.signal.throwIfAborted();
        }
        checkEqual(proxy.exports[0]!.endedBy ?? "nobody, 15 s after the cancel", "target", "the target must end the ExportSubject of the copy it cancelled (PORT-056)");
      } finally {
        proxy.release();
        proxy.close();
      }
      // Released, the copy's rest reaches no one: the migration stays cancelled.
      const { migration: after } = await target.clients.portability.getMigration({ name });
      checkEqual(after?.state, v1.MigrationState.MIGRATION_STATE_CANCELLED, "the cancelled migration, read again");
      const written = await append(source, plain.name, [{ n: 4 }], { clientSequence: 4 });
      checkEqual(written.headVersion, 4n, "the source still takes the subject's writes after the cancelled migration (PORT-037)");
    },
  }),

  defineCase({
    id: "portability-switch.tls-source-verified-as-named",
    requirements: ["PORT-040", "PORT-055", "PORT-035", "PORT-034"],
    profile: "portability",
    needs: ["second-server"],
    timeoutMs: 120_000,
    async run(ctx) {
      // A source over TLS (a front of the suite's in front of its proxy), with a certificate
      // of a CA the target's operator trusts (CONTINUITY_MIGRATION_CA of the runner contract).
      const certificates = await sourceCertificates();
      const dir = await mkdtemp(join(tmpdir(), "continuity-source-ca-"));
      const fronts: TlsFront[] = [];
      try {
        const caFile = join(dir, "ca.pem");
        await writeFile(caFile, certificates.ca);
        const second = await ctx.startSecondServer({ CONTINUITY_MIGRATION_CA: caFile });
        const via = (certificate: { readonly cert: string; readonly key: string }, host: string) => async (port: string) => {
          const front = await startTlsFront(certificate, Number(port));
          fronts.push(front);
          return `https://${host}:${front.port}`;
        };
        // Named by host: dialed at 127.0.0.1, verified and asked for as localhost (server name sent).
        const byName = await migrateThrough(ctx, second, "none", { named: via(certificates.server, "localhost") });
        checkEqual(byName.ended.state, v1.MigrationState.MIGRATION_STATE_COMPLETED, `a migration from ${byName.named}, its certificate issued for localhost by a CA the target trusts, must complete, got error ${JSON.stringify(byName.ended.error)}`);
        check(fronts[0]!.serverNames.length > 0, "the target must connect to the source over TLS");
        checkEqual(fronts[0]!.serverNames.filter((n) => n !== "localhost"), [], `the TLS server name the target sends to ${byName.named} must be localhost (PORT-055)`);
        checkEqual(byName.authorities.filter((a) => a !== byName.named.slice("https://".length)), [], `the :authority of every call to ${byName.named} (PORT-055)`);
        // Named by an IP address: the certificate is verified for the address.
        const byAddress = await migrateThrough(ctx, second, "none", { named: via(certificates.server, "127.0.0.1") });
        checkEqual(byAddress.ended.state, v1.MigrationState.MIGRATION_STATE_COMPLETED, `a migration from ${byAddress.named}, its certificate issued for 127.0.0.1, must complete, got error ${JSON.stringify(byAddress.ended.error)}`);
        // A certificate of the trusted CA for another name: the source is not the one named.
        const mismatch = await migrateThrough(ctx, second, "none", { named: via(certificates.otherName, "localhost") });
        checkEqual(mismatch.ended.state, v1.MigrationState.MIGRATION_STATE_FAILED, `a migration from ${mismatch.named}, whose certificate names source.invalid, must fail (PORT-040)`);
        check(mismatch.ended.error !== "", "Migration.error must name the failed connection (PORT-040)");
        const written = await append(mismatch.source, mismatch.stream.name, [{ n: 4 }], { clientSequence: 4 });
        checkEqual(written.headVersion, 4n, "the source still serves the subject after the refused connection (PORT-034)");
      } finally {
        for (const front of fronts) front.close();
        await rm(dir, { recursive: true, force: true });
      }
    },
  }),

  defineCase({
    id: "portability-switch.cancel-during-the-switch",
    requirements: ["PORT-030", "PORT-037", "PORT-054", "PORT-039"],
    profile: "portability",
    needs: ["second-server"],
    timeoutMs: 90_000,
    async run(ctx) {
      const second = await ctx.startSecondServer();
      const source = await ctx.session();
      const stream = await createStream(ctx, source, { encoding: ENCODING.mergePatch, streamId: "moving" });
      for (let seq = 1; seq <= 3; seq++) await append(source, stream.name, [{ n: seq }], { clientSequence: seq });
      const target = await sessionOn(ctx, second, source);
      const proxy = await startSourceProxy(ctx, "none", { holdSwitch: true });
      let name = "";
      try {
        name = await migrateIntoHeldSwitch(ctx, source, target, proxy);
        // A target of several servers may take the cancel on one that does not run the
        // migration: it must end it all the same, before the commit.
        const { migration: cancelled } = await target.clients.portability.cancelMigration({ name });
        checkEqual(cancelled?.state, v1.MigrationState.MIGRATION_STATE_CANCELLED, "CancelMigration of a migration in its switch, before the commit (PORT-037)");
        checkEqual(cancelled?.error, "", "Migration.error of a cancelled migration (PORT-037)");
        const bound = Date.now() + 15_000;
        while (proxy.switches[0]!.endedBy === undefined && Date.now() < bound) {
          await new Promise((resolve) => setTimeout(resolve, 20));
          ctx.signal.throwIfAborted();
        }
        checkEqual(proxy.switches[0]!.endedBy ?? "nobody, 15 s after the cancel", "target", "the target must end the TransferSubject of the switch it cancelled (PORT-054)");
        check(!proxy.switches[0]!.committed, "the source must not commit a switch the target cancelled");
      } finally {
        proxy.release();
        proxy.close();
      }
      const written = await append(source, stream.name, [{ n: 4 }], { clientSequence: 4 });
      checkEqual(written.headVersion, 4n, "the source takes the subject's writes after the cancelled switch (PORT-039)");
      const { migration: after } = await target.clients.portability.getMigration({ name });
      checkEqual(after?.state, v1.MigrationState.MIGRATION_STATE_CANCELLED, "the cancelled migration, read again");
    },
  }),
  defineCase({
    id: "portability-switch.switch-reported-while-it-runs",
    requirements: ["PORT-030", "PORT-031", "PORT-033"],
    profile: "portability",
    needs: ["second-server"],
    timeoutMs: 90_000,
    async run(ctx) {
      const second = await ctx.startSecondServer();
      const source = await ctx.session();
      const stream = await createStream(ctx, source, { encoding: ENCODING.mergePatch, streamId: "moving" });
      let head: continuity.v1.AppendDeltasResponse | undefined;
      for (let seq = 1; seq <= 3; seq++) head = await append(source, stream.name, [{ n: seq }], { clientSequence: seq });
      const target = await sessionOn(ctx, second, source);
      // The proxy holds the switch after its manifest: the source holds the subject's writes,
      // the target waits for the rest of the switch's bundle, and reports that it switches.
      const proxy = await startSourceProxy(ctx, "none", { holdSwitch: true });
      let name = "";
      try {
        name = await migrateIntoHeldSwitch(ctx, source, target, proxy);
        proxy.release();
        const ended = await migrationEnded(ctx, target.clients, name, 30_000);
        checkEqual(ended.state, v1.MigrationState.MIGRATION_STATE_COMPLETED, `the migration, its switch let go, must complete, got error ${JSON.stringify(ended.error)}`);
      } finally {
        proxy.release();
        proxy.close();
      }
      const { stream: there } = await target.clients.streams.getStream({ name: `${target.subject}/streams/moving` });
      checkEqual([there?.uid, there?.headVersion], [stream.uid, 3n], "the migrated stream on the target (PORT-031)");
      checkBytes(there?.headHash, head!.headHash, "its head hash on the target (PORT-031)");
    },
  }),
];
