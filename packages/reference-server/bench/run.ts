import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { CORE_SCENARIOS, formatProfiles, runCore, type CoreResult, type CoreScenario } from "./core-run.js";
import { runPortability, formatPortability, type PortabilityResult } from "./portability-run.js";
import { runPostgres, type PostgresResult } from "./postgres.js";
import { formatRows } from "./rows.js";
import { STATE_EVERY_DELTAS } from "../src/services/json-heads.js";

// `pnpm bench`: the reference server against floors measured in the same run on the same
// machine, printed side by side with their ratio. Core (bench/core-run.ts): every row of
// issue 13's table — appends, server CPU per append, latency, the y-websocket peer, resume,
// fan-out, idle memory, wire bytes, disk, catch-up — against raw @grpc/grpc-js servers of
// identity-serialized bytes and y-websocket, repeated. Portability: export and import throughput against
// reading and SHA-256-hashing the same bytes, server RSS while they run, and live migration
// under writers. Counts and time are bounded; `--quick` is a smoke run. Numbers describe
// this machine only.
//
// PostgreSQL (bench/postgres.ts, issue 11): appends on PostgreSQL against SQLite and on two
// replicas against one, append -> subscriber across replicas against within one, and catch-up
// after 1M deltas against 1k, on DATABASE_URL.
//
//   pnpm bench [--quick] [--only core|portability|postgres|<scenario>,…] [--json] [--profile <dir>]

const { values: flags } = parseArgs({
  args: process.argv.slice(2).filter((arg) => arg !== "--"),
  options: {
    quick: { type: "boolean", default: false },
    only: { type: "string" },
    json: { type: "boolean", default: false },
    profile: { type: "string" },
    help: { type: "boolean", default: false },
  },
});
if (flags.help) {
  process.stdout.write(`usage: pnpm bench [--quick] [--only <parts>] [--json] [--profile <dir>]
  --quick          a smoke run: fewer calls and subscribers, short histories, a 10 MB subject, 5 migrations
  --only <parts>   comma-separated: core, portability, postgres, or core scenarios (${CORE_SCENARIOS.join(", ")})
  --json           print the results as one JSON document instead of tables
  --profile <dir>  run the reference server under node --cpu-prof: one profile per core scenario
                   (<scenario>.cpuprofile) and export.cpuprofile / import.cpuprofile, summarised
Environment: BENCH_REPEATS, BENCH_CLIENTS, BENCH_APPENDS, BENCH_LATENCY_SAMPLES, BENCH_DURABILITY,
  BENCH_STATE_MB, BENCH_RESUME_CALLS, BENCH_SUBSCRIBERS, BENCH_FANOUT_SAMPLES, BENCH_FANOUT_FORM, BENCH_DISK_DELTAS, BENCH_DISK_LARGE_DELTAS,
  BENCH_CATCHUP_SHORT, BENCH_CATCHUP_LONG, BENCH_PORTABILITY_MB, BENCH_PORTABILITY_DELTA_KB,
  BENCH_MIGRATION_RUNS, BENCH_MIGRATION_WRITERS, BENCH_MIGRATION_WRITE_INTERVAL_MS,
  DATABASE_URL (postgres://postgres@127.0.0.1:5432/test), BENCH_PG_CATCHUP_LONG
  (see packages/reference-server/README.md)
`);
  process.exit(0);
}
const parts = (flags.only ?? "core,portability,postgres").split(",").map((part) => part.trim());
const known = new Set<string>(["core", "portability", "postgres", ...CORE_SCENARIOS]);
const unknown = parts.filter((part) => !known.has(part));
if (unknown.length > 0) {
  process.stderr.write(`--only takes core, portability, postgres or ${CORE_SCENARIOS.join(", ")}, not ${unknown.join(", ")}\n`);
  process.exit(2);
}
const scenarios: CoreScenario[] = CORE_SCENARIOS.filter((s) => parts.includes("core") || parts.includes(s));
const withPortability = parts.includes("portability");
const withPostgres = parts.includes("postgres");
const QUICK = flags.quick;

const envNumber = (name: string, fallback: number): number => {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, not ${raw}`);
  return value;
};
const durabilityText = process.env["BENCH_DURABILITY"] ?? "full";
if (durabilityText !== "full" && durabilityText !== "normal") throw new Error(`BENCH_DURABILITY must be full or normal, not ${durabilityText}`);
const durability: "full" | "normal" = durabilityText;

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "continuity-bench-"));
  const progress = (line: string): void => void process.stderr.write(`bench: ${line}\n`);
  const profileDir = flags.profile === undefined ? undefined : resolve(flags.profile);
  if (profileDir !== undefined) await mkdir(profileDir, { recursive: true });
  try {
    let core: CoreResult | undefined;
    if (scenarios.length > 0) {
      core = await runCore(join(dir, "core"), {
        scenarios,
        durability,
        profileDir,
        progress,
        repeats: envNumber("BENCH_REPEATS", QUICK ? 1 : 3),
        clients: envNumber("BENCH_CLIENTS", QUICK ? 16 : 64),
        appendsPerClient: envNumber("BENCH_APPENDS", QUICK ? 20 : 60),
        latencySamples: envNumber("BENCH_LATENCY_SAMPLES", QUICK ? 100 : 300),
        timeCapMs: 20_000,
        stateBytes: envNumber("BENCH_STATE_MB", 1) * 1e6,
        resumeCalls: envNumber("BENCH_RESUME_CALLS", QUICK ? 3 : 10),
        subscribers: envNumber("BENCH_SUBSCRIBERS", QUICK ? 200 : 1000),
        fanoutSamples: envNumber("BENCH_FANOUT_SAMPLES", QUICK ? 10 : 30),
        fanoutCompact: process.env.BENCH_FANOUT_FORM === "compact",
        diskDeltas: envNumber("BENCH_DISK_DELTAS", QUICK ? 800 : 4000),
        // A whole period of the stored-state rule (a full state per 4,096 deltas), so the figure
        // includes the states it stores, not only the deltas between them.
        diskLargeDeltas: envNumber("BENCH_DISK_LARGE_DELTAS", 2 * STATE_EVERY_DELTAS),
        catchUpShort: envNumber("BENCH_CATCHUP_SHORT", 1000),
        catchUpLong: envNumber("BENCH_CATCHUP_LONG", QUICK ? 20_000 : 1_000_000),
        catchUpCalls: QUICK ? 5 : 30,
      });
      if (!flags.json) {
        process.stdout.write(
          `Continuity reference server (durability ${durability}) vs floors measured in the same run; ratio = Continuity median / floor median\n${formatRows(core.rows)}\n`,
        );
        if (Object.keys(core.profiles).length > 0) process.stdout.write(`\n${formatProfiles(core.profiles)}\n`);
      }
    }
    let portability: PortabilityResult | undefined;
    if (withPortability) {
      portability = await runPortability(join(dir, "portability"), {
        subjectBytes: envNumber("BENCH_PORTABILITY_MB", QUICK ? 10 : 100) * 1e6,
        deltaBytes: envNumber("BENCH_PORTABILITY_DELTA_KB", 64) * 1024,
        streamCount: 4,
        migrationRuns: envNumber("BENCH_MIGRATION_RUNS", QUICK ? 5 : 20),
        writers: envNumber("BENCH_MIGRATION_WRITERS", 4),
        writeIntervalMs: envNumber("BENCH_MIGRATION_WRITE_INTERVAL_MS", 10),
        profileDir,
        progress,
      });
      if (!flags.json) process.stdout.write(`${core === undefined ? "" : "\n"}${formatPortability(portability)}\n`);
    }
    let postgres: PostgresResult | undefined;
    if (withPostgres) {
      const loadBefore = loadavg()[0]!;
      postgres = await runPostgres(join(dir, "postgres"), {
        databaseUrl: process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test",
        durability,
        repeats: envNumber("BENCH_REPEATS", QUICK ? 1 : 3),
        clients: envNumber("BENCH_CLIENTS", QUICK ? 16 : 64),
        appendsPerClient: envNumber("BENCH_APPENDS", QUICK ? 20 : 60),
        latencySamples: envNumber("BENCH_LATENCY_SAMPLES", QUICK ? 100 : 300),
        timeCapMs: 20_000,
        catchUpShort: envNumber("BENCH_CATCHUP_SHORT", 1000),
        catchUpLong: envNumber("BENCH_PG_CATCHUP_LONG", QUICK ? 20_000 : 1_000_000),
        catchUpCalls: QUICK ? 5 : 30,
        progress,
      });
      if (!flags.json) {
        const history = `history of ${postgres.history.deltas} deltas inserted in ${postgres.history.seconds.toFixed(1)} s through ${postgres.history.how}`;
        process.stdout.write(
          `${core === undefined && portability === undefined ? "" : "\n"}PostgreSQL (durability ${durability}; load average ${loadBefore.toFixed(1)} before, ${loadavg()[0]!.toFixed(1)} after); ratio = first median / second median\n${formatRows(postgres.rows)}\n  ${history}\n`,
        );
      }
    }
    if (flags.json) {
      const machine = { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? "", node: process.version, platform: process.platform, loadAverage: loadavg() };
      process.stdout.write(`${JSON.stringify({ machine, quick: QUICK, core, portability, postgres }, null, 2)}\n`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
// Every server is stopped and every client closed by now; a y-websocket provider's socket can
// still hold the event loop for a while after destroy(), and nothing is left to wait for.
process.exit(0);
