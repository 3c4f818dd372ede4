import { setTimeout as sleep } from "node:timers/promises";
import { continuity } from "@continuity/sdk/gen";
import { ErrorInfo, RichClientError } from "nice-grpc-error-details";
import type { BenchSession, ContinuityServer } from "./servers.js";

// Live migration under load: writers append to the subject on the source while the target
// copies it, catches up and switches. What is timed is what an operator and a device see:
// CreateMigration until GetMigration says COMPLETED, the pause the source reports for the
// switch (Migration.switch_pause), and the longest any writer's append waited.

const v1 = continuity.v1;
const POLL_MS = 20;

/** How the writers fared in one migration. */
export interface WriterReport {
  readonly acknowledged: number;
  /** The longest any append took, acknowledged or answered SUBJECT_MOVED. */
  readonly longestWaitMs: number;
}

function isSubjectMoved(error: unknown): boolean {
  return error instanceof RichClientError && error.extra.some((d) => d.$type === ErrorInfo.$type && (d as ErrorInfo).reason === "SUBJECT_MOVED");
}

/**
 * `count` devices of the subject each append one small JSON delta to their own stream every
 * `intervalMs`, until the source answers SUBJECT_MOVED (or `stop()` after the migration
 * ended otherwise).
 */
async function startWriters(source: ContinuityServer, account: string, count: number, intervalMs: number) {
  const sessions = await Promise.all(Array.from({ length: count }, (_, i) => source.session(`writer-${i}`, account)));
  await Promise.all(
    sessions.map((s, i) =>
      s.stream.createStream({
        parent: s.subject,
        streamId: `writer-${i}`,
        stream: { type: "org.example.bench.progress", encoding: v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH, conflictPolicy: v1.ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND },
      }),
    ),
  );
  let stopped = false;
  const acknowledged = sessions.map(() => 0);
  let longestWaitMs = 0;
  const loops = sessions.map(async (s, i) => {
    const stream = `${s.subject}/streams/writer-${i}`;
    for (let seq = 1n; !stopped; seq++) {
      const started = performance.now();
      try {
        await s.stream.appendDeltas({ stream, deltas: [{ payload: Buffer.from(JSON.stringify({ position: Number(seq) })) }], clientSequence: seq });
        acknowledged[i]! += 1;
      } catch (error) {
        if (isSubjectMoved(error)) return;
        throw error;
      } finally {
        longestWaitMs = Math.max(longestWaitMs, performance.now() - started);
      }
      await sleep(intervalMs);
    }
  });
  return {
    /** Waits for every writer to meet SUBJECT_MOVED (or ends them), then reports. */
    async finish(moved: boolean): Promise<WriterReport & { perStream: number[] }> {
      if (!moved) stopped = true;
      await Promise.all(loops);
      return { acknowledged: acknowledged.reduce((a, b) => a + b, 0), longestWaitMs, perStream: acknowledged };
    },
  };
}

/** One migration, timed. */
export interface MigrationRun {
  readonly seconds: number;
  readonly switchPauseMs: number;
  readonly bytesCopied: number;
  readonly recordsCopied: number;
  readonly writers: WriterReport;
}

/**
 * Migrates `sourceAccount`'s subject from `source` to a new subject of `targetAccount` on
 * `target` while writers append on the source; checks afterwards that the target holds every
 * acknowledged write.
 */
export async function migrateWithWriters(
  source: ContinuityServer,
  target: ContinuityServer,
  options: { sourceAccount: string; targetAccount: string; writers: number; writeIntervalMs: number },
): Promise<MigrationRun> {
  const from = await source.session("migrator", options.sourceAccount);
  const to = await target.session("migrator", options.targetAccount);
  const writers = await startWriters(source, options.sourceAccount, options.writers, options.writeIntervalMs);
  await sleep(50); // the writers are under way before the migration starts
  const started = performance.now();
  const created = await to.portability.createMigration({ parent: to.subject, source: source.address, sourceAccessToken: from.accessToken, sourceSubject: from.subject });
  let migration = created.migration!;
  while (migration.state === v1.MigrationState.MIGRATION_STATE_COPYING || migration.state === v1.MigrationState.MIGRATION_STATE_SWITCHING) {
    await sleep(POLL_MS);
    migration = (await to.portability.getMigration({ name: migration.name })).migration!;
  }
  const seconds = (performance.now() - started) / 1000;
  const completed = migration.state === v1.MigrationState.MIGRATION_STATE_COMPLETED;
  const report = await writers.finish(completed);
  if (!completed) throw new Error(`migration ended ${v1.MigrationState[migration.state]}: ${migration.error}`);
  await checkWriterStreams(to, report.perStream);
  const pause = migration.switchPause;
  return {
    seconds,
    switchPauseMs: pause === undefined ? Number.NaN : Number(pause.seconds) * 1000 + pause.nanos / 1e6,
    bytesCopied: Number(migration.bytesCopied),
    recordsCopied: Number(migration.recordsCopied),
    writers: { acknowledged: report.acknowledged, longestWaitMs: report.longestWaitMs },
  };
}

/** Every append the source acknowledged is on the target, and nothing else (PORT-031, PORT-033). */
async function checkWriterStreams(target: BenchSession, acknowledged: readonly number[]): Promise<void> {
  for (const [i, count] of acknowledged.entries()) {
    const stream = (await target.stream.getStream({ name: `${target.subject}/streams/writer-${i}` })).stream;
    if (stream?.headVersion !== BigInt(count)) throw new Error(`writer-${i}: the source acknowledged ${count} appends, the target holds ${stream?.headVersion}`);
  }
}

/** A small subject for the repeated runs: one opaque stream of `deltas` 1 KiB deltas. */
export async function seedSmallSubject(source: ContinuityServer, account: string, deltas: number): Promise<void> {
  const session = await source.session("seed", account);
  await session.stream.createStream({
    parent: session.subject,
    streamId: "notes",
    stream: { type: "org.example.bench.notes", encoding: v1.DeltaEncoding.DELTA_ENCODING_OPAQUE, conflictPolicy: v1.ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND },
  });
  const payload = Buffer.alloc(1024, 7);
  for (let written = 0, seq = 1n; written < deltas; seq++) {
    const count = Math.min(100, deltas - written);
    await session.stream.appendDeltas({ stream: `${session.subject}/streams/notes`, deltas: Array.from({ length: count }, () => ({ payload })), clientSequence: seq });
    written += count;
  }
}
