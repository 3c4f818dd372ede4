// A subject moves live between a server on SQLite and a server on PostgreSQL, both ways, with
// the portability profile (CreateMigration on the target, as `continuity migrate` and
// `pnpm demo:migrate` do it), while a device keeps writing through the SDK: the device follows
// SUBJECT_MOVED and goes on writing on the target, every write is there once and in order, and
// every head the source showed is in the target's chains with the same hash.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { createAssertionTokenProvider, createContinuityClient, createReplica, hasReason, v1, type ContinuityClient, type SubjectMovedEvent, type WriteRejected } from "@continuity/sdk";
import { toHex, verifyChain } from "@continuity/sdk/protocol";
import { dropSchema, freshSchemaName, TEST_DATABASE_URL } from "../../src/testing/postgres.js";
import { createTestPlatform, type TestPlatform } from "../../src/testing/test-platform.js";
import { spawnServer, type ServerProcess } from "../ops/server-process.js";

type StoreKind = "sqlite" | "postgres";
const ACCOUNT = "mover";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

/** A server process on `kind`, trusting `platformsFile`. */
async function startServer(kind: StoreKind, platformsFile: string): Promise<{ address: string; process: ServerProcess }> {
  const dataDir = await mkdtemp(join(tmpdir(), `continuity-move-${kind}-`));
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  // Loopback sources allowed, as for every test: by default a server dials only public ones (PORT-041).
  const env: Record<string, string> = { CONTINUITY_LISTEN: "127.0.0.1:0", CONTINUITY_DATA_DIR: dataDir, CONTINUITY_PLATFORMS: platformsFile, CONTINUITY_MIGRATION_SOURCES: "127.0.0.0/8,::1" };
  if (kind === "postgres") {
    const schema = freshSchemaName();
    cleanups.push(() => dropSchema(schema));
    const url = new URL(TEST_DATABASE_URL);
    url.searchParams.set("schema", schema);
    env["CONTINUITY_STORE"] = url.toString();
  }
  const server = spawnServer(["--log-level", "warn"], env);
  cleanups.push(async () => {
    server.child.kill("SIGTERM");
    await server.exited();
  });
  return { address: await server.ready(30_000), process: server };
}

function clientOf(address: string, platform: TestPlatform, options: { deviceId?: string; scopes?: string[] }): ContinuityClient {
  const client = createContinuityClient({
    address,
    deadlineMs: 10_000,
    retry: { baseDelayMs: 20, maxDelayMs: 200 },
    tokenProvider: createAssertionTokenProvider({
      ...(options.deviceId === undefined ? {} : { deviceId: options.deviceId }),
      ...(options.scopes === undefined ? {} : { scopes: options.scopes }),
      getAssertion: () => platform.assertion(ACCOUNT),
    }),
  });
  cleanups.push(async () => client.close());
  return client;
}

interface Head {
  readonly uid: string;
  readonly version: bigint;
  readonly hash: string;
}

async function headsOf(client: ContinuityClient, subject: string): Promise<Map<string, Head>> {
  const { streams } = await client.streams.listStreams({ parent: subject, pageSize: 100, pageToken: "", type: "" });
  return new Map(streams.map((s) => [s.name.slice(s.name.lastIndexOf("/") + 1), { uid: s.uid, version: s.headVersion, hash: toHex(s.headHash) }]));
}

describe.each([
  ["sqlite", "postgres"],
  ["postgres", "sqlite"],
] as const)("a live move from %s to %s", (from, to) => {
  it("keeps every write once, equal heads per stream, and the device writing on the target", { timeout: 150_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), "continuity-move-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const platform = await createTestPlatform("course-a");
    const platformsFile = join(dir, "platforms.json");
    await writeFile(platformsFile, JSON.stringify({ platforms: [{ id: platform.id, jwks: platform.config.jwks }] }));
    const [source, target] = await Promise.all([startServer(from, platformsFile), startServer(to, platformsFile)]);

    // The device: the SDK's replica, two streams (one JSON Patch, one opaque), writing without pause.
    const laptop = clientOf(source.address, platform, { deviceId: "laptop" });
    const replica = await createReplica(laptop, { heartbeatSeconds: 1 });
    cleanups.push(async () => replica.close());
    const moves: SubjectMovedEvent[] = [];
    replica.on("moved", (event) => moves.push(event));
    const rejected: WriteRejected[] = [];
    type Log = { items?: number[] };
    const log = await replica.openStream<Log>({ stream: "log", create: { type: "org.example.log", encoding: "json-patch" } });
    const notes = await replica.openStream<{ last?: number }>({ stream: "notes", create: { type: "org.example.notes", encoding: "json-merge-patch" } });
    for (const handle of [log, notes]) handle.on("rejected", (event) => rejected.push(event));
    await log.update((draft) => {
      draft.items = [];
    });
    const sourceSubject = replica.subject;
    let written = 0;
    let stop = false;
    const writer = (async () => {
      while (!stop) {
        written += 1;
        const n = written;
        await log.update((draft) => {
          draft.items = [...(draft.items ?? []), n];
        });
        await notes.update((draft) => {
          draft.last = n;
        });
        await sleep(5);
      }
    })();
    while (written < 20) await sleep(10);

    // The source's heads, read until it answers SUBJECT_MOVED: each must be in the target's chains.
    const manager = clientOf(source.address, platform, { scopes: ["state.read", "identity.manage"] });
    const shown: (Head & { id: string })[] = [];
    const redirected = (async () => {
      for (;;) {
        try {
          for (const [id, head] of await headsOf(manager, sourceSubject)) if (shown.at(-1)?.version !== head.version || shown.at(-1)?.id !== id) shown.push({ id, ...head });
        } catch (error) {
          if (hasReason(error, "SUBJECT_MOVED")) return error.metadata["target"] ?? "";
          throw error;
        }
        await sleep(5);
      }
    })();
    redirected.catch(() => undefined);

    const onTarget = clientOf(target.address, platform, { scopes: ["state.read", "identity.manage"] });
    const { subject: targetSubject } = await onTarget.session();
    const { accessToken: sourceAccessToken } = await manager.tokens.exchangeToken({
      grantType: "urn:ietf:params:oauth:grant-type:token-exchange",
      subjectTokenType: "urn:ietf:params:oauth:token-type:jwt",
      subjectToken: await platform.assertion(ACCOUNT),
      scope: "identity.manage",
      deviceId: "",
      deviceDisplayName: "",
    });
    const created = await onTarget.portability.createMigration({ parent: targetSubject, source: source.address, sourceAccessToken, sourceSubject });
    let migration = created.migration!;
    for (const deadline = Date.now() + 60_000; migration.state !== v1.MigrationState.MIGRATION_STATE_COMPLETED; ) {
      expect(migration.state, migration.error).not.toBe(v1.MigrationState.MIGRATION_STATE_FAILED);
      if (Date.now() > deadline) throw new Error(`the migration did not complete: ${v1.migrationStateToJSON(migration.state)}`);
      await sleep(25);
      migration = (await onTarget.portability.getMigration({ name: migration.name })).migration!;
    }
    const writtenAtSwitch = written;

    // The device follows, and writes on the target.
    for (const deadline = Date.now() + 20_000; moves.length === 0 && Date.now() < deadline; ) await sleep(20);
    const afterMove = written;
    while (written < afterMove + 20) await sleep(10);
    stop = true;
    await writer;
    for (const handle of [log, notes]) await handle.settled({ signal: AbortSignal.timeout(30_000) });
    expect(moves).toEqual([{ address: target.address, previousAddress: source.address, subject: targetSubject, previousSubject: sourceSubject }]);
    expect(laptop.address).toBe(target.address);
    expect(rejected).toEqual([]);
    expect(await redirected).toBe(target.address);

    // On the target: one unbroken chain per stream, with every write once and in order.
    const heads = await headsOf(onTarget, targetSubject);
    expect([...heads.keys()].sort()).toEqual(["log", "notes"]);
    const hashAt = new Map<string, Map<bigint, string>>();
    for (const [id, head] of heads) {
      const name = `${targetSubject}/streams/${id}`;
      const deltas = [];
      for (;;) {
        const page = await onTarget.streams.listDeltas({ stream: name, afterVersion: BigInt(deltas.length) });
        deltas.push(...page.deltas);
        if (page.deltas.length === 0 || BigInt(deltas.length) >= page.headVersion) break;
      }
      const { stream } = await onTarget.streams.getStream({ name });
      const verification = verifyChain({ start: { version: stream!.horizonVersion, hash: stream!.horizonHash }, encoding: stream!.encoding, deltas });
      expect(verification.ok, `${id}: the chain does not verify`).toBe(true);
      if (verification.ok) expect(toHex(verification.headHash)).toBe(head.hash);
      expect(deltas.map((d) => d.clientSequence), `${id}: each write once, in order`).toEqual(deltas.map((_, i) => BigInt(i + 1)));
      expect(new Set(deltas.map((d) => d.device))).toEqual(new Set([`${targetSubject}/devices/laptop`]));
      hashAt.set(id, new Map(deltas.map((d) => [d.version, toHex(d.hash)])));
      const handle = id === "log" ? log : notes;
      expect(handle.status.confirmedVersion).toBe(head.version);
      expect(handle.status.headHash).toBe(head.hash);
    }
    expect(heads.get("log")!.version).toBe(BigInt(written + 1));
    expect(heads.get("notes")!.version).toBe(BigInt(written));
    expect(log.confirmedState).toEqual({ items: Array.from({ length: written }, (_, i) => i + 1) });

    // Every head the source showed, to its last answer before SUBJECT_MOVED, is in the target's chain, hash for hash, same uid.
    expect(shown.length).toBeGreaterThan(0);
    for (const head of shown) {
      expect(heads.get(head.id)?.uid).toBe(head.uid);
      expect(hashAt.get(head.id)?.get(head.version), `${head.id} v${head.version}`).toBe(head.hash);
    }
    const last = new Map(shown.map((h) => [h.id, h]));
    expect(last.get("notes")!.version).toBeGreaterThan(0n);
    expect(written).toBeGreaterThan(writtenAtSwitch);
    console.info(
      `${from} -> ${to}: ${migration.recordsCopied} records copied, switch pause ${migration.switchPause === undefined ? "n/a" : `${(Number(migration.switchPause.seconds) * 1000 + migration.switchPause.nanos / 1e6).toFixed(1)} ms`}; ` +
        `source's last heads ${[...last].map(([id, h]) => `${id} v${h.version}`).join(", ")}; target's ${[...heads].map(([id, h]) => `${id} v${h.version}`).join(", ")}`,
    );
  });
});
