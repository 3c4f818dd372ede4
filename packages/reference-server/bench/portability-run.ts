import { readdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { migrateWithWriters, seedSmallSubject, type MigrationRun } from "./migration.js";
import { buildSubject, checkHeads, exportToFile, hashFileFloor, importFromFile, transportFloor, type Transfer } from "./portability.js";
import { formatProfile, summarizeProfile, type ProfileSummary } from "./profile-summary.js";
import { withRssSampling, type RssGrowth } from "./rss.js";
import { startContinuity, type ContinuityServer } from "./servers.js";

// The portability part of `pnpm bench`. Two server processes: A holds the large subject and
// is the source of every migration; B receives the import and is the target of every
// migration (each into a subject of its own, so nothing collides).

export interface PortabilityOptions {
  readonly subjectBytes: number;
  readonly deltaBytes: number;
  readonly streamCount: number;
  readonly migrationRuns: number;
  readonly writers: number;
  readonly writeIntervalMs: number;
  /** Where `--cpu-prof` writes export.cpuprofile and import.cpuprofile; no profiling when undefined. */
  readonly profileDir: string | undefined;
  readonly progress: (line: string) => void;
}

interface Throughput {
  readonly seconds: number;
  readonly megabytesPerSecond: number;
  /** Of the floor's MB/s: 1 = as fast as reading and hashing the same bytes. */
  readonly ratio: number;
  /** Of the transport floor's MB/s: 1 = as fast as bare grpc-js moves the same parts. */
  readonly transportRatio: number;
  readonly serverRss: RssGrowth;
}

interface Spread {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

export interface PortabilityResult {
  readonly subject: { readonly streams: number; readonly deltas: number; readonly deltaBytes: number; readonly payloadBytes: number; readonly bundleBytes: number; readonly buildSeconds: number };
  readonly floor: { readonly what: string; readonly megabytesPerSecond: number };
  readonly transportFloor: { readonly what: string; readonly exportMegabytesPerSecond: number; readonly importMegabytesPerSecond: number; readonly exportRss: RssGrowth; readonly importRss: RssGrowth };
  readonly export: Throughput;
  readonly import: Throughput;
  readonly profiled: boolean;
  readonly largeMigration: MigrationRun & { readonly sourceRss: RssGrowth; readonly targetRss: RssGrowth };
  readonly smallMigrations: {
    readonly runs: number;
    readonly seedDeltas: number;
    readonly writers: number;
    readonly writeIntervalMs: number;
    readonly switchPauseMs: Spread;
    readonly completionSeconds: Spread;
    readonly longestWriterWaitMs: Spread;
    readonly acknowledgedPerRun: Spread;
  };
  readonly profiles?: { readonly export: ProfileSummary; readonly import: ProfileSummary };
}

/** Deltas of 1 KiB in each small subject migrated repeatedly. */
const SMALL_SEED_DELTAS = 200;
const MB = 1e6;

function spread(values: readonly number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN;
  return { p50: at(50), p99: at(99), max: sorted[sorted.length - 1] ?? Number.NaN };
}

// Each thread of a profiled process writes a profile (tsx's module hooks run in a worker), so
// each process profiles into a folder of its own and the main thread's (thread id 0) is kept.
export function cpuProfileArgs(dir: string | undefined, name: string): string[] {
  return dir === undefined ? [] : ["--cpu-prof", "--cpu-prof-dir", join(dir, name)];
}

/**
 * Moves the main thread's profile of `name` to `<dir>/<name>.cpuprofile`; returns its path.
 * A scenario that restarts the server (fan-out does, once per repeat) leaves one profile per
 * process: the last one written is the last repeat's, the one that ran the whole measurement.
 */
export async function keepMainThreadProfile(dir: string, name: string): Promise<string> {
  const folder = join(dir, name);
  const profiles = (await readdir(folder)).filter((file) => /^CPU\.\d+\.\d+\.\d+\.0\.\d+\.cpuprofile$/.test(file));
  const written = await Promise.all(profiles.map(async (file) => ({ file, at: (await stat(join(folder, file))).mtimeMs })));
  const main = written.sort((a, b) => b.at - a.at)[0]?.file;
  if (main === undefined) throw new Error(`no main-thread profile in ${folder}`);
  const kept = join(dir, `${name}.cpuprofile`);
  await rename(join(folder, main), kept);
  await rm(folder, { recursive: true, force: true });
  return kept;
}

export async function runPortability(dir: string, options: PortabilityOptions): Promise<PortabilityResult> {
  const { progress, profileDir } = options;
  const servers: ContinuityServer[] = [];
  try {
    const a = await startContinuity(join(dir, "a"));
    servers.push(a);
    progress(`building a subject of ${(options.subjectBytes / MB).toFixed(0)} MB of ${options.deltaBytes / 1024} KiB opaque deltas on server A`);
    const built = await buildSubject(await a.session("builder"), { totalBytes: options.subjectBytes, deltaBytes: options.deltaBytes, streamCount: options.streamCount });

    // A fresh process for the export, so its RSS growth is the export's and not the build's.
    await a.restart(cpuProfileArgs(profileDir, "export"));
    const file = join(dir, "subject.cbundle");
    progress("exporting it from A into a .cbundle file (ExportSubject)");
    const exporter = await a.session("exporter");
    const exported = await withRssSampling(a.child.pid!, () => exportToFile(a.address, exporter, file));

    progress("reading and hashing the same file (the floor)");
    const floor = await hashFileFloor(file);
    const floorMBps = floor.bytes / MB / floor.seconds;
    progress("moving the same parts over bare grpc-js (the transport floor)");
    const transport = await transportFloor(file, exported.result.parts);
    const transportMBps = { export: transport.export.bytes / MB / transport.export.seconds, import: transport.import.bytes / MB / transport.import.seconds };

    const b = await startContinuity(join(dir, "b"), cpuProfileArgs(profileDir, "import"));
    servers.push(b);
    progress("importing the file into server B (ImportBundle)");
    const importer = await b.session("importer", "import-user");
    const imported = await withRssSampling(b.child.pid!, () => importFromFile(b.address, importer, file, exported.result.parts));
    await checkHeads(importer, built);
    // Fresh processes again, so the migration's RSS growth is its own (and a profiled
    // process writes its profile on the way out).
    await Promise.all([a.restart(), b.restart()]);

    const throughput = (t: { result: Transfer; rss: RssGrowth }, transportMBps: number): Throughput => {
      const megabytesPerSecond = t.result.bytes / MB / t.result.seconds;
      return { seconds: t.result.seconds, megabytesPerSecond, ratio: megabytesPerSecond / floorMBps, transportRatio: megabytesPerSecond / transportMBps, serverRss: t.rss };
    };

    progress(`migrating the large subject live from A to B, ${options.writers} writers active`);
    const large = await withRssSampling(a.child.pid!, () =>
      withRssSampling(b.child.pid!, () => migrateWithWriters(a, b, { sourceAccount: "bench-user", targetAccount: "migrate-large", writers: options.writers, writeIntervalMs: options.writeIntervalMs })),
    );
    await checkHeads(await b.session("checker", "migrate-large"), built);

    progress(`${options.migrationRuns} live migrations of a small subject, ${options.writers} writers active in each`);
    const runs: MigrationRun[] = [];
    for (let i = 0; i < options.migrationRuns; i++) {
      await seedSmallSubject(a, `small-${i}`, SMALL_SEED_DELTAS);
      runs.push(await migrateWithWriters(a, b, { sourceAccount: `small-${i}`, targetAccount: `small-${i}-moved`, writers: options.writers, writeIntervalMs: options.writeIntervalMs }));
    }

    const profiles =
      profileDir === undefined
        ? undefined
        : {
            export: await summarizeProfile(await keepMainThreadProfile(profileDir, "export"), { within: "exportSubjectParts" }),
            import: await summarizeProfile(await keepMainThreadProfile(profileDir, "import"), { within: "importBundle" }),
          };
    return {
      subject: { streams: built.streams.length, deltas: built.deltas, deltaBytes: options.deltaBytes, payloadBytes: built.payloadBytes, bundleBytes: exported.result.bytes, buildSeconds: built.seconds },
      floor: { what: "read the .cbundle file + SHA-256 (node:crypto), median of 5", megabytesPerSecond: floorMBps },
      transportFloor: { what: "the same parts over bare @grpc/grpc-js, same clients, median of 3", exportMegabytesPerSecond: transportMBps.export, importMegabytesPerSecond: transportMBps.import, exportRss: transport.exportRss, importRss: transport.importRss },
      export: throughput(exported, transportMBps.export),
      import: throughput(imported, transportMBps.import),
      profiled: profileDir !== undefined,
      largeMigration: { ...large.result.result, sourceRss: large.rss, targetRss: large.result.rss },
      smallMigrations: {
        runs: runs.length,
        seedDeltas: SMALL_SEED_DELTAS,
        writers: options.writers,
        writeIntervalMs: options.writeIntervalMs,
        switchPauseMs: spread(runs.map((r) => r.switchPauseMs)),
        completionSeconds: spread(runs.map((r) => r.seconds)),
        longestWriterWaitMs: spread(runs.map((r) => r.writers.longestWaitMs)),
        acknowledgedPerRun: spread(runs.map((r) => r.writers.acknowledged)),
      },
      ...(profiles === undefined ? {} : { profiles }),
    };
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}

const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
const rss = (r: RssGrowth): string => `${r.growthBytes >= 0 ? "+" : ""}${mib(r.growthBytes)} (${mib(r.baselineBytes)} -> ${mib(r.peakBytes)}), CPU ${r.cpuSeconds.toFixed(2)} s`;
const ms = (value: number): string => `${value.toFixed(0)} ms`;

export function formatPortability(result: PortabilityResult): string {
  const s = result.subject;
  const goal = (ratio: number): string => (ratio >= 0.5 ? "goal >= 50 %: met" : "goal >= 50 %: NOT met");
  const line = (label: string, t: Throughput): string =>
    `${label.padEnd(34)} ${t.megabytesPerSecond.toFixed(1).padStart(8)} MB/s ${t.seconds.toFixed(2).padStart(7)} s ${(t.ratio * 100).toFixed(1).padStart(6)} %  (${goal(t.ratio)}); ${(t.transportRatio * 100).toFixed(0)} % of the transport floor; server RSS ${rss(t.serverRss)}`;
  const m = result.largeMigration;
  const small = result.smallMigrations;
  const lines = [
    `Portability: ${s.deltas} opaque deltas x ${s.deltaBytes / 1024} KiB in ${s.streams} streams = ${(s.payloadBytes / MB).toFixed(1)} MB of payload, a ${(s.bundleBytes / MB).toFixed(1)} MB bundle file; built through AppendDeltas in ${s.buildSeconds.toFixed(1)} s`,
    `(MB = 10^6 bytes of bundle file; ratio: share of the floor's MB/s; floor: ${result.floor.what})${result.profiled ? " [export and import ran under --cpu-prof]" : ""}`,
    `${"floor: read + SHA-256 of the file".padEnd(34)} ${result.floor.megabytesPerSecond.toFixed(1).padStart(8)} MB/s`,
    `${"transport floor: bare grpc-js".padEnd(34)} ${result.transportFloor.exportMegabytesPerSecond.toFixed(1).padStart(8)} MB/s out, ${result.transportFloor.importMegabytesPerSecond.toFixed(1)} MB/s in (${((result.transportFloor.exportMegabytesPerSecond / result.floor.megabytesPerSecond) * 100).toFixed(0)} % / ${((result.transportFloor.importMegabytesPerSecond / result.floor.megabytesPerSecond) * 100).toFixed(0)} % of the floor above: the most any gRPC export or import here can reach); its RSS ${rss(result.transportFloor.exportRss)} out, ${rss(result.transportFloor.importRss)} in`,
    line("export (ExportSubject -> file)", result.export),
    line("import (file -> ImportBundle)", result.import),
    `live migration of that subject (${small.writers} writers, one append each every ${small.writeIntervalMs} ms):`,
    `  CreateMigration -> COMPLETED ${m.seconds.toFixed(2)} s (${(m.bytesCopied / MB / m.seconds).toFixed(1)} MB/s of records), switch pause ${ms(m.switchPauseMs)}, longest writer wait ${ms(m.writers.longestWaitMs)}, ${m.writers.acknowledged} writes acknowledged, all on the target`,
    `  server RSS: source ${rss(m.sourceRss)}, target ${rss(m.targetRss)}`,
    `live migration x ${small.runs} of a small subject (${small.seedDeltas} deltas of 1 KiB, same writers):           p50       p99       max`,
    `  switch pause (Migration.switch_pause)${ms(small.switchPauseMs.p50).padStart(23)} ${ms(small.switchPauseMs.p99).padStart(9)} ${ms(small.switchPauseMs.max).padStart(9)}   (goal p99 < 1 s: ${small.switchPauseMs.p99 < 1000 ? "met" : "NOT met"})`,
    `  longest writer wait in the run       ${ms(small.longestWriterWaitMs.p50).padStart(23)} ${ms(small.longestWriterWaitMs.p99).padStart(9)} ${ms(small.longestWriterWaitMs.max).padStart(9)}`,
    `  CreateMigration -> COMPLETED         ${`${small.completionSeconds.p50.toFixed(2)} s`.padStart(23)} ${`${small.completionSeconds.p99.toFixed(2)} s`.padStart(9)} ${`${small.completionSeconds.max.toFixed(2)} s`.padStart(9)}`,
    `  writes acknowledged per run          ${small.acknowledgedPerRun.p50.toFixed(0).padStart(23)} ${small.acknowledgedPerRun.p99.toFixed(0).padStart(9)} ${small.acknowledgedPerRun.max.toFixed(0).padStart(9)}   (every one found on the target)`,
  ];
  if (result.profiles !== undefined) lines.push("", formatProfile("export server profile", result.profiles.export), "", formatProfile("import server profile", result.profiles.import));
  return lines.join("\n");
}
