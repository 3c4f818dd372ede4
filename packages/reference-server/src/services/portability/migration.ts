import { randomUUID } from "node:crypto";
import { Status } from "nice-grpc-common";
import { continuity } from "@continuity/sdk/gen";
import type { JSONWebKeySet } from "jose";
import type { MigrationRecord, StreamRecord } from "../../store/index.js";
import { subjectName } from "../../validation/names.js";
import type { ServiceDeps } from "../deps.js";
import { createBundleImporter } from "./import.js";
import { createSourceClient, errorInfoOf, sourceHostPort, type SourceClient } from "./source-client.js";
import { checkSource, parseSourceAddress, type SourcePolicy } from "./source-policy.js";

const v1 = continuity.v1;

/** Tunables of live migration. */
export interface MigrationSettings {
  /** Catch-up rounds end when one brings fewer delta records than this, or after `maxCatchUpRounds`. */
  readonly inStepDeltas: number;
  readonly maxCatchUpRounds: number;
  /** The address this server tells the source to redirect to (SUBJECT_MOVED `target`). */
  readonly publicAddress: () => string;
  /** Keys whose bundles may bring account links (the source's only when the operator trusts it). */
  readonly trustedKeys: JSONWebKeySet;
  /** CA certificates for `https://` sources instead of the system's roots. */
  readonly sourceCa?: Buffer;
  /** The addresses a source may be dialed at (PORT-041). */
  readonly sourcePolicy: SourcePolicy;
  /**
   * How long this server's claim to run a migration lasts unless renewed (it is renewed every
   * third of it): another server of the store ends a migration as interrupted only once its
   * runner's lease ran out, so a live runner is left alone and a dead one's migration ends.
   */
  readonly leaseMs: number;
}

/** Runs and cancels the migrations this server is the target of. */
export interface MigrationRunner {
  /** The lease a migration this server is about to start is stored with. */
  lease(now: Date): { readonly owner: string; readonly until: Date };
  start(migration: MigrationRecord, sourceAccessToken: string): void;
  /** Cancels a running migration before its switch; false when it is not running here. */
  cancel(subjectId: string, migrationId: string): boolean;
  /** Aborts every running migration (shutdown); they end as failed. */
  stopAll(): void;
}

class Cancelled extends Error {}

/** What a running migration shares with its cancel: whether the commit was sent. */
interface RunState {
  committing: boolean;
}

/**
 * The target's side of a live migration (PORT-030 … PORT-034): a full export of the source
 * imported here, incremental rounds until a round brings almost nothing, then the switch
 * through TransferSubject, where the source holds writes, sends the rest, and redirects once
 * this server has stored it. Progress is written to the store as it goes, so GetMigration
 * and the metrics see it; any failure before the commit leaves the source serving.
 */
export function createMigrationRunner(deps: ServiceDeps, settings: MigrationSettings): MigrationRunner {
  const running = new Map<string, { controller: AbortController; state: RunState }>();
  const key = (subjectId: string, id: string): string => `${subjectId}/${id}`;
  const owner = randomUUID();
  const lease = (now: Date) => ({ owner, until: new Date(now.getTime() + settings.leaseMs) });

  const run = async (initial: MigrationRecord, token: string, signal: AbortSignal, state: RunState, abort: () => void): Promise<void> => {
    let migration = initial;
    // Ended through another server (a cancel there) when the stored record has ended: this
    // run stops, and writes nothing over what that server wrote.
    let endedElsewhere = false;
    const update = async (change: Partial<MigrationRecord>): Promise<void> => {
      migration = { ...migration, ...change };
      if ((await deps.store.putMigration(migration)) === "stale") {
        endedElsewhere = true;
        abort();
        return;
      }
      deps.metrics.recordMigration(migration);
    };
    const renewal = setInterval(() => {
      void deps.store.renewMigrationLease(migration.subjectId, migration.id, owner, lease(deps.clock()).until, deps.clock()).then(
        (renewed) => {
          if (renewed === "lost") {
            endedElsewhere = true;
            abort();
          }
        },
        (error: unknown) => deps.logger.warn({ err: error, subject: migration.subjectId, migration: migration.id }, "could not renew the migration's lease"),
      );
    }, Math.max(1, Math.floor(settings.leaseMs / 3)));
    renewal.unref();
    // The calls to the source end with the run, whatever ends it; a cancel reaches them only
    // until the commit is sent (after that the switch belongs to the source).
    const calls = new AbortController();
    const onCancel = (): void => {
      if (!state.committing) calls.abort();
    };
    signal.addEventListener("abort", onCancel, { once: true });
    const callSignal = calls.signal;
    // CreateMigration checked the source; its name is resolved again here and the source
    // dialed at the address checked now, so a name that moved in between is judged again.
    const { hostPort, tls } = sourceHostPort(migration.source);
    const checked = await checkSource(parseSourceAddress(hostPort), settings.sourcePolicy);
    if (checked.kind !== "allowed") {
      // Stryker disable next-line StringLiteral: the listener was added with once, and nothing aborts the signal after the run
      signal.removeEventListener("abort", onCancel);
      const cancelled = signal.aborted;
      // PORT-035: a source that cannot be reached (or, PORT-041, may not be dialed) fails the migration.
      await update({ state: cancelled ? "cancelled" : "failed", error: cancelled ? "" : checked.message, endedAt: deps.clock() }).catch(() => undefined);
      deps.logger.warn({ subject: migration.subjectId, migration: migration.id, source: migration.source, reason: checked.message }, cancelled ? "migration cancelled" : "migration failed");
      return;
    }
    const source = createSourceClient(checked.pinned, tls, token, settings.sourceCa);
    // The subject's name on the source as the client gave it; `subjects/-` (the token's own) until known.
    const sourceName = (): string => (migration.sourceSubject === "" ? "subjects/-" : migration.sourceSubject);
    const sourceSubject = sourceName();
    let committed = false;
    try {
      // 1. Everything the source has, then rounds of what came since.
      let round = 0;
      let brought = await copyRound(deps, source, migration.subjectId, sourceSubject, undefined, callSignal, update, () => migration, settings.trustedKeys);
      // Stryker disable next-line all: catch-up rounds only shorten the switch: whatever they leave, the switch's own incremental bundle brings
      while (brought.deltas >= settings.inStepDeltas && round < settings.maxCatchUpRounds) {
        // Stryker disable next-line all: catch-up rounds only shorten the switch: whatever they leave, the switch's own incremental bundle brings
        round += 1;
        brought = await copyRound(deps, source, migration.subjectId, sourceSubject, await positions(deps, migration.subjectId), callSignal, update, () => migration, settings.trustedKeys);
      }
      await update({ lagDeltas: brought.deltas });
      if (signal.aborted) throw new Cancelled();

      // 2. The switch.
      await update({ state: "switching" });
      const transfer = source.transfer(callSignal);
      transfer.send({ step: { $case: "begin", value: { name: sourceSubject, target: settings.publicAddress(), targetSubject: subjectName(migration.subjectId), after: await positions(deps, migration.subjectId) } } });
      const importer = createBundleImporter(deps, migration.subjectId, { trustedKeys: settings.trustedKeys });
      let pauseMs: number | undefined;
      for await (const bytes of transfer.responses) {
        const response = v1.TransferSubjectResponse.decode(bytes);
        // Stryker disable next-line OptionalChaining: every TransferSubjectResponse of a source that passed the importer has its part set
        if (response.part?.$case === "committed") {
          if (!state.committing) throw new Error("the source confirmed a switch that was not committed");
          const pause = response.part.value.pause;
          pauseMs = pause === undefined ? 0 : Number(pause.seconds) * 1000 + pause.nanos / 1e6;
          committed = true;
          continue;
        }
        await importer.push(bytes);
        // Stryker disable next-line OptionalChaining: every TransferSubjectResponse of a source that passed the importer has its part set
        if (response.part?.$case === "trailer") {
          importer.finish();
          // Cancelling is no longer possible once the commit is sent. Another server may have
          // cancelled the migration meanwhile (its runner is here, so it could only store the
          // end): recording the commit first either finds that end, or keeps any cancel from
          // landing after it.
          if (signal.aborted) throw new Cancelled();
          await update({ committing: true });
          if (endedElsewhere || signal.aborted) throw new Cancelled();
          state.committing = true;
          transfer.send({ step: { $case: "commit", value: {} } });
          transfer.end();
        }
      }
      if (!committed) throw new Error("the source ended the switch without confirming it");
      const c = importer.counts;
      const copied = c.recordsImported + c.recordsSkipped;
      await update({ state: "completed", lagDeltas: 0, recordsCopied: migration.recordsCopied + copied, recordsTotal: migration.recordsTotal + copied, bytesCopied: migration.bytesCopied + c.bytes, switchPauseMs: pauseMs, endedAt: deps.clock() });
      deps.logger.info({ subject: migration.subjectId, migration: migration.id, source: migration.source, pauseMs }, "migration completed");
    } catch (error) {
      // The commit went out but its answer did not come back: the source may have switched.
      // It says so by answering the subject's calls with SUBJECT_MOVED naming this server.
      if (state.committing && !committed && (await movedHere(source, sourceName(), settings.publicAddress(), subjectName(migration.subjectId)))) {
        await update({ state: "completed", lagDeltas: 0, endedAt: deps.clock() }).catch(() => undefined);
        deps.logger.info({ subject: migration.subjectId, migration: migration.id, source: migration.source }, "migration completed (the source confirmed the move when asked)");
        return;
      }
      if (endedElsewhere) {
        deps.logger.info({ subject: migration.subjectId, migration: migration.id, source: migration.source }, "migration ended through another server");
        return;
      }
      const cancelled = !state.committing && (error instanceof Cancelled || signal.aborted);
      // Stryker disable next-line StringLiteral: the reason of a cancelled run is not recorded (error is empty when cancelled)
      const reason = cancelled ? "cancelled" : describe(error);
      await update({ state: cancelled ? "cancelled" : "failed", error: cancelled ? "" : reason, endedAt: deps.clock() }).catch(() => undefined);
      deps.logger.warn({ subject: migration.subjectId, migration: migration.id, source: migration.source, err: error }, cancelled ? "migration cancelled" : "migration failed");
    } finally {
      clearInterval(renewal);
      // Stryker disable next-line StringLiteral: the listener was added with once; removing it is only tidiness
      signal.removeEventListener("abort", onCancel);
      calls.abort();
      source.close();
    }
  };

  return {
    lease,
    start(migration, token) {
      const controller = new AbortController();
      // Stryker disable next-line ObjectLiteral: an absent committing is false as well
      const state: RunState = { committing: false };
      const k = key(migration.subjectId, migration.id);
      running.set(k, { controller, state });
      void run(migration, token, controller.signal, state, () => controller.abort()).finally(() => running.delete(k));
    },
    cancel(subjectId, id) {
      const entry = running.get(key(subjectId, id));
      if (entry === undefined || entry.state.committing) return false;
      entry.controller.abort();
      return true;
    },
    stopAll() {
      for (const { controller } of running.values()) controller.abort();
    },
  };
}

/** Where each stream of the subject stands here, as ExportSubjectRequest.after. */
async function positions(deps: ServiceDeps, subjectId: string): Promise<continuity.v1.BundleStreamPosition[]> {
  const out: continuity.v1.BundleStreamPosition[] = [];
  // Stryker disable next-line all: ExportSubjectRequest.after only spares sending what the target holds; without it the whole subject comes again and the import skips what it holds
  for (let cursor: string | undefined, first = true; first || cursor !== undefined; first = false) {
    const page = await deps.store.listStreamsByUid(subjectId, { after: cursor, limit: 200 });
    out.push(...page.items.map((s: StreamRecord) => ({ streamUid: s.uid, version: BigInt(s.headVersion) })));
    cursor = page.nextAfter;
  }
  return out;
}

/** One export of the source imported here; returns how many delta records it brought. */
async function copyRound(
  deps: ServiceDeps,
  source: SourceClient,
  subjectId: string,
  sourceSubject: string,
  after: continuity.v1.BundleStreamPosition[] | undefined,
  signal: AbortSignal,
  update: (change: Partial<MigrationRecord>) => Promise<void>,
  current: () => MigrationRecord,
  trustedKeys: JSONWebKeySet,
): Promise<{ deltas: number }> {
  const importer = createBundleImporter(deps, subjectId, { trustedKeys });
  const base = current();
  let deltas = 0;
  let lastReport = 0;
  for await (const bytes of source.exportSubject({ name: sourceSubject, after: after ?? [] }, signal)) {
    const part = await importer.push(bytes);
    if (part.kind === "manifest") {
      const total = part.manifest.streams.reduce((n, s) => n + Number(s.deltaCount) + 1 + (after === undefined && s.horizonVersion > 0n ? 1 : 0), 0);
      await update({ recordsTotal: base.recordsTotal + total, lagDeltas: part.manifest.streams.reduce((n, s) => n + Number(s.deltaCount), 0) });
    }
    // Stryker disable next-line all: the count of delta records only decides the catch-up rounds (above)
    if (part.kind === "delta") deltas += 1;
    // A client that did not name the source subject learns it from the bundle's stream names.
    if (part.kind === "stream" && current().sourceSubject === "") {
      // Stryker disable next-line Regex: the importer took the stream record, so its name is subjects/{subject}/streams/{stream}; anchored or not, the match is the same
      const match = /^(subjects\/[a-z0-9][a-z0-9-]{0,63})\/streams\//.exec(part.stream.name);
      if (match !== null) await update({ sourceSubject: match[1]! });
    }
    if (part.kind === "trailer") await update({ recordsTotal: base.recordsTotal + Number(part.trailer.recordCount) });
    const now = Date.now();
    // Stryker disable next-line all: how often progress is written while a round copies; the round's last update below writes the same totals
    if (now - lastReport > 250) {
      lastReport = now;
      const c = importer.counts;
      await update({ recordsCopied: base.recordsCopied + c.recordsImported + c.recordsSkipped, bytesCopied: base.bytesCopied + c.bytes });
    }
  }
  const c = importer.finish();
  await update({ recordsCopied: base.recordsCopied + c.recordsImported + c.recordsSkipped, bytesCopied: base.bytesCopied + c.bytes });
  return { deltas };
}

/** Whether the source answers the subject's calls with SUBJECT_MOVED naming this server. */
async function movedHere(source: SourceClient, sourceSubject: string, target: string, targetSubject: string): Promise<boolean> {
  const probe = new AbortController();
  const timer = setTimeout(() => probe.abort(), 10_000);
  try {
    for await (const _part of source.exportSubject({ name: sourceSubject, after: [] }, probe.signal)) break;
    return false;
  } catch (error) {
    const info = errorInfoOf(error);
    return info?.reason === "SUBJECT_MOVED" && info.metadata["target"] === target && info.metadata["subject"] === targetSubject;
  } finally {
    clearTimeout(timer);
    probe.abort();
  }
}

function describe(error: unknown): string {
  // Stryker disable next-line all: every error a run meets is an Error; a gRPC error's own message (`16 UNAUTHENTICATED: …`) names the source's answer as this one does
  if (error !== null && typeof error === "object" && "code" in error && "details" in error) {
    const e = error as { code: number; details: string };
    return `the source answered ${Status[e.code] ?? e.code}: ${e.details}`;
  }
  return error instanceof Error ? error.message : String(error);
}

