import type { ChildProcess } from "node:child_process";
import { join } from "node:path";
import { appendRows, createStream, latencyRows, smallPatch, type CallOptions, type CoreTargets } from "./core-calls.js";
import { catchUpRows, diskRows, fanoutRows, resumeRows, type StateOptions } from "./core-state.js";
import { ECHO_PATHS, rawClient, rawUnary } from "./floors.js";
import { cpuProfileArgs, keepMainThreadProfile } from "./portability-run.js";
import { formatProfile, summarizeProfile, type ProfileSummary } from "./profile-summary.js";
import type { Row } from "./rows.js";
import { spawnReady, startContinuity, stopProcess, type ContinuityServer } from "./servers.js";
import { continuity } from "@continuity/sdk/gen";

// The core part of `pnpm bench`: every row of issue 13's table, each against its floor or
// peer measured in the same run. Three processes besides this one: the reference server, a
// raw @grpc/grpc-js server of identity-serialized bytes (bench/echo-server.ts) and the
// y-websocket server (bench/yjs-server.ts). Disk growth gets a reference server of its own,
// since it restarts it to measure the database file with the WAL checkpointed.

/** The core scenarios, in the order they run; `--only` takes any of them. */
export const CORE_SCENARIOS = ["appends", "latency", "resume", "fanout", "disk", "catchup"] as const;
export type CoreScenario = (typeof CORE_SCENARIOS)[number];

/** The server function whose first and last samples bound each scenario's profile summary (start-up left out). */
const PROFILE_WINDOW: Record<CoreScenario, string> = {
  appends: "appendDeltas",
  latency: "appendDeltas",
  resume: "getSnapshot",
  fanout: "appendDeltas",
  disk: "appendDeltas",
  catchup: "getSnapshot",
};

export interface CoreOptions extends CallOptions, StateOptions {
  readonly scenarios: readonly CoreScenario[];
  readonly durability: "normal" | "full";
  /** Where each scenario's server profile goes; no profiling when undefined. */
  readonly profileDir: string | undefined;
}

export interface CoreResult {
  readonly durability: string;
  readonly settings: Record<string, number>;
  readonly rows: readonly Row[];
  readonly profiles: Record<string, ProfileSummary>;
}

async function warmUp(server: ContinuityServer, echoAddress: string): Promise<void> {
  const writer = await server.session("warm-up");
  const stream = await createStream(writer, "warm-up", continuity.v1.DeltaEncoding.DELTA_ENCODING_JSON_PATCH);
  for (let seq = 2n; seq <= 300n; seq++) {
    await writer.stream.appendDeltas({ stream, deltas: [{ payload: smallPatch(Number(seq)) }], clientSequence: seq });
  }
  const client = rawClient(echoAddress);
  for (let i = 0; i < 300; i++) await rawUnary(client, ECHO_PATHS.echo, smallPatch(i));
  client.close();
}

export async function runCore(dir: string, options: CoreOptions): Promise<CoreResult> {
  const processes: ChildProcess[] = [];
  const servers: ContinuityServer[] = [];
  const env = { CONTINUITY_DURABILITY: options.durability };
  const rows: Row[] = [];
  const profiles: Record<string, ProfileSummary> = {};
  try {
    const server = await startContinuity(join(dir, "core"), [], env);
    servers.push(server);
    const echo = await spawnReady(["bench/echo-server.ts"], {}, "ECHO_LISTENING=");
    processes.push(echo.child);
    const yjs = await spawnReady(["bench/yjs-server.ts"], {}, "YJS_LISTENING=");
    processes.push(yjs.child);
    const targets: CoreTargets = {
      continuity: server,
      echo: { address: echo.address, pid: echo.child.pid! },
      yjs: { address: yjs.address, pid: yjs.child.pid! },
    };
    await warmUp(server, echo.address);

    for (const scenario of options.scenarios) {
      const profiled = options.profileDir !== undefined && scenario !== "disk";
      if (profiled) await server.restart(cpuProfileArgs(options.profileDir, scenario));
      switch (scenario) {
        case "appends":
          rows.push(...(await appendRows(targets, options)));
          break;
        case "latency":
          rows.push(...(await latencyRows(targets, options)));
          break;
        case "resume":
          rows.push(...(await resumeRows(targets, options)));
          break;
        case "fanout":
          // The floor's server is profiled too (fanout-floor.cpuprofile): what the transport alone costs per delivery.
          rows.push(
            ...(await fanoutRows(targets, options, profiled ? cpuProfileArgs(options.profileDir, scenario) : [], profiled ? cpuProfileArgs(options.profileDir, "fanout-floor") : [])),
          );
          if (!profiled) await server.restart([]);
          break;
        case "disk": {
          const diskDir = join(dir, "disk");
          const diskServer = await startContinuity(diskDir, [], env);
          servers.push(diskServer);
          rows.push(...(await diskRows(diskServer, diskDir, options)));
          await diskServer.stop();
          break;
        }
        case "catchup":
          rows.push(...(await catchUpRows(targets, options)));
          break;
      }
      if (profiled) {
        await server.restart([]);
        const file = await keepMainThreadProfile(options.profileDir!, scenario);
        profiles[scenario] = await summarizeProfile(file, { top: 20, within: PROFILE_WINDOW[scenario], until: scenario === "fanout" ? "onCancel" : undefined });
        options.progress(`profile of ${scenario}: ${file}`);
        if (scenario === "fanout") {
          const floorFile = await keepMainThreadProfile(options.profileDir!, "fanout-floor");
          profiles["fanout-floor"] = await summarizeProfile(floorFile, { top: 20, within: "publish" });
          options.progress(`profile of the fan-out floor: ${floorFile}`);
        }
      }
    }
    return {
      durability: options.durability,
      settings: {
        clients: options.clients,
        appendsPerClient: options.appendsPerClient,
        latencySamples: options.latencySamples,
        repeats: options.repeats,
        stateBytes: options.stateBytes,
        subscribers: options.subscribers,
        fanoutSamples: options.fanoutSamples,
        diskDeltas: options.diskDeltas,
        catchUpShort: options.catchUpShort,
        catchUpLong: options.catchUpLong,
      },
      rows,
      profiles,
    };
  } finally {
    for (const s of servers) await s.stop();
    await Promise.all(processes.map(stopProcess));
  }
}

export function formatProfiles(profiles: Record<string, ProfileSummary>): string {
  return Object.entries(profiles)
    .map(([scenario, summary]) => formatProfile(scenario === "fanout-floor" ? "raw grpc-js server during the fan-out floor" : `reference server during ${scenario}`, summary))
    .join("\n\n");
}
