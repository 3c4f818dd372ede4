import { createInterface } from "node:readline/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { v1 } from "@continuity/sdk";
import { createReporter, type CliIo, type OutputFlags, type Reporter } from "../context.js";
import { calling, CliError, EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_SUCCESS, EXIT_USAGE } from "../errors.js";
import { signIn, type SignedInServer } from "../net/server-session.js";
import { formatBytes, formatDuration } from "../ui/format.js";
import type { ProgressState } from "../ui/progress.js";
import type { ServerFlags } from "./server-flags.js";

/** Flags of `continuity migrate`. */
export interface MigrateFlags extends OutputFlags, ServerFlags {
  readonly source?: string;
  readonly sourcePlatformId?: string;
  readonly sourcePlatformKey?: string;
  readonly sourceAccount?: string;
  /** Follow an existing migration instead of starting one. */
  readonly follow?: string;
  /** Cancel an existing migration. */
  readonly cancel?: string;
  /** What Ctrl-C does while following: ask (on a terminal), cancel, or detach. */
  readonly onInterrupt?: "ask" | "cancel" | "detach";
  /** Seconds between two GetMigration calls. */
  readonly pollInterval?: number;
}

const ENDED: ReadonlySet<v1.MigrationState> = new Set([
  v1.MigrationState.MIGRATION_STATE_COMPLETED,
  v1.MigrationState.MIGRATION_STATE_FAILED,
  v1.MigrationState.MIGRATION_STATE_CANCELLED,
]);

/**
 * `continuity migrate`: starts a live migration on the target (`--server`) that pulls the
 * subject from `--source`, handing it an access token for the subject there, and follows it
 * with GetMigration until it completes, fails or is cancelled. Ctrl-C offers CancelMigration.
 */
export async function migrateCommand(flags: MigrateFlags, io: CliIo): Promise<number> {
  const report = createReporter(io, flags);
  const modes = [flags.follow, flags.cancel].filter((value) => value !== undefined);
  if (modes.length > 1) throw new CliError("give --follow or --cancel, not both", EXIT_USAGE);
  const target = await signIn({ address: flags.server, platformId: flags.platformId, platformKeyFile: flags.platformKey, accountId: flags.account, flagPrefix: "" });
  // Listening from the start: a Ctrl-C while the migration is being created is handled once
  // it exists, like one while it is followed.
  const interrupt = createInterruptLatch(io);
  try {
    if (flags.cancel !== undefined) {
      const migration = await cancel(target, flags.cancel);
      report.result(migrationJson(migration), describe(migration, target.address));
      if (migration.state === v1.MigrationState.MIGRATION_STATE_CANCELLED) return EXIT_SUCCESS;
      if (!report.json) io.stderr.write(`continuity migrate: ${migration.name} had already ${stateName(migration.state).toLowerCase()}; nothing was cancelled\n`);
      return EXIT_FAILURE;
    }
    let migration: v1.Migration;
    if (flags.follow !== undefined) {
      migration = await get(target, flags.follow);
    } else {
      migration = await start(target, flags);
      report.note(`started ${migration.name} on ${target.address}, pulling ${migration.sourceSubject === "" ? "the subject" : migration.sourceSubject} from ${migration.source}`);
    }
    const ended = await follow(target, migration, flags, report, io, interrupt);
    report.result(migrationJson(ended.migration), describe(ended.migration, target.address));
    if (ended.interrupted) return EXIT_INTERRUPTED;
    if (ended.migration.state === v1.MigrationState.MIGRATION_STATE_COMPLETED) return EXIT_SUCCESS;
    if (!report.json) io.stderr.write(`continuity migrate: ${ended.migration.name} ${stateName(ended.migration.state).toLowerCase()}${ended.migration.error === "" ? "" : `: ${ended.migration.error}`}\n`);
    return EXIT_FAILURE;
  } finally {
    interrupt.close();
    target.close();
  }
}

/** Remembers a Ctrl-C until it is dealt with. */
interface InterruptLatch {
  /** Aborted once Ctrl-C was pressed since the last {@link InterruptLatch.reset}. */
  readonly signal: AbortSignal;
  reset(): void;
  close(): void;
}

function createInterruptLatch(io: CliIo): InterruptLatch {
  let controller = new AbortController();
  const close = io.onInterrupt(() => controller.abort());
  return {
    get signal() {
      return controller.signal;
    },
    reset() {
      controller = new AbortController();
    },
    close,
  };
}

async function start(target: SignedInServer, flags: MigrateFlags): Promise<v1.Migration> {
  const source = await signIn({ address: flags.source, platformId: flags.sourcePlatformId ?? flags.platformId, platformKeyFile: flags.sourcePlatformKey ?? flags.platformKey, accountId: flags.sourceAccount ?? flags.account, flagPrefix: "source-" });
  try {
    const sourceAccessToken = await source.accessToken();
    const { migration } = await calling("CreateMigration", target.address, () => target.client.portability.createMigration({ parent: target.subject, source: source.address, sourceAccessToken }));
    if (migration === undefined) throw new CliError(`${target.address} answered CreateMigration without a migration`);
    return migration;
  } finally {
    source.close();
  }
}

async function get(target: SignedInServer, name: string): Promise<v1.Migration> {
  const { migration } = await calling("GetMigration", target.address, () => target.client.portability.getMigration({ name }));
  if (migration === undefined) throw new CliError(`${target.address} answered GetMigration without a migration`);
  return migration;
}

async function cancel(target: SignedInServer, name: string): Promise<v1.Migration> {
  const { migration } = await calling("CancelMigration", target.address, () => target.client.portability.cancelMigration({ name }));
  if (migration === undefined) throw new CliError(`${target.address} answered CancelMigration without a migration`);
  return migration;
}

/** Polls the migration until it ends, or until Ctrl-C and what the person chose then. */
async function follow(target: SignedInServer, first: v1.Migration, flags: MigrateFlags, report: Reporter, io: CliIo, interrupt: InterruptLatch): Promise<{ migration: v1.Migration; interrupted: boolean }> {
  const intervalMs = Math.max(50, (flags.pollInterval ?? 0.5) * 1000);
  let progress = report.progress("migrate", stateOf(first));
  let migration = first;
  const show = (m: v1.Migration) => progress.update(stateOf(m));
  try {
    for (;;) {
      show(migration);
      if (ENDED.has(migration.state)) {
        progress.stop(stateOf(migration));
        return { migration, interrupted: false };
      }
      await sleep(intervalMs, undefined, { signal: interrupt.signal }).catch(() => undefined);
      if (interrupt.signal.aborted) {
        progress.stop();
        const choice = await onInterrupt(flags, migration, io);
        if (choice === "cancel") {
          report.note(`cancelling ${migration.name}…`);
          return { migration: await cancel(target, migration.name), interrupted: true };
        }
        if (choice === "detach") {
          report.note(`stopped following ${migration.name}; it goes on. Follow it with --follow ${migration.name}, cancel it with --cancel ${migration.name}`);
          return { migration, interrupted: true };
        }
        interrupt.reset();
        progress = report.progress("migrate", stateOf(migration));
      }
      try {
        migration = await get(target, migration.name);
      } catch (error) {
        // The migration runs on the target whether anyone watches it or not.
        if (!(error instanceof CliError)) throw error;
        throw new CliError(`${error.message}; the migration goes on: follow it again with --follow ${migration.name}`, error.exitCode, error.facts, { cause: error });
      }
    }
  } finally {
    progress.stop();
  }
}

async function onInterrupt(flags: MigrateFlags, migration: v1.Migration, io: CliIo): Promise<"cancel" | "detach" | "continue"> {
  const mode = flags.onInterrupt ?? "ask";
  if (mode !== "ask") return mode;
  if (io.stdin.isTTY !== true || flags.json === true) return "detach";
  const prompt = createInterface({ input: io.stdin, output: io.stderr });
  const again = new AbortController();
  const stopListening = io.onInterrupt(() => again.abort());
  try {
    const answer = await prompt.question(`\ncancel ${migration.name}? The source keeps serving the subject. [y/N, Ctrl-C again to leave it running] `, { signal: again.signal });
    return /^y(es)?$/i.test(answer.trim()) ? "cancel" : "continue";
  } catch {
    return "detach";
  } finally {
    stopListening();
    prompt.close();
  }
}

/** A migration's numbers as progress. */
function stateOf(m: v1.Migration): ProgressState {
  return { records: Number(m.recordsCopied), totalRecords: m.recordsTotal > 0n ? Number(m.recordsTotal) : undefined, bytes: Number(m.bytesCopied), note: `lag ${m.lagDeltas} deltas, ${stateName(m.state)}` };
}

function stateName(state: v1.MigrationState): string {
  return v1.migrationStateToJSON(state).replace("MIGRATION_STATE_", "");
}

function durationMs(duration: { seconds: bigint; nanos: number } | undefined): number | undefined {
  return duration === undefined ? undefined : Number(duration.seconds) * 1000 + duration.nanos / 1e6;
}

function migrationJson(m: v1.Migration): object {
  return {
    migration: m.name,
    source: m.source,
    sourceSubject: m.sourceSubject,
    state: stateName(m.state),
    recordsCopied: m.recordsCopied.toString(),
    recordsTotal: m.recordsTotal.toString(),
    bytesCopied: m.bytesCopied.toString(),
    lagDeltas: m.lagDeltas.toString(),
    switchPauseMs: durationMs(m.switchPause),
    error: m.error === "" ? undefined : m.error,
    createTime: m.createTime?.toISOString(),
    endTime: m.endTime?.toISOString(),
  };
}

function describe(m: v1.Migration, target: string): string {
  const pause = durationMs(m.switchPause);
  const took = m.createTime !== undefined && m.endTime !== undefined ? formatDuration(m.endTime.getTime() - m.createTime.getTime()) : undefined;
  return [
    `${m.name} on ${target}: ${stateName(m.state)}`,
    `  from       ${m.sourceSubject === "" ? "" : `${m.sourceSubject} on `}${m.source}`,
    `  records    ${m.recordsCopied}${m.recordsTotal > 0n ? ` of ${m.recordsTotal}` : ""} copied (${formatBytes(Number(m.bytesCopied))})`,
    `  lag        ${m.lagDeltas} deltas`,
    ...(pause === undefined ? [] : [`  pause      writes were held ${formatDuration(pause)} at the switch`]),
    ...(took === undefined ? [] : [`  took       ${took}`]),
    ...(m.error === "" ? [] : [`  error      ${m.error}`]),
  ].join("\n");
}
