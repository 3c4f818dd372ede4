/**
 * `pnpm demo:migrate`: a learner's course platform moves her state from one vendor's server to
 * another's while her laptop and phone keep writing, and then she takes it all out in an
 * encrypted file and puts it into a third server. Every step is checked: heads hash for hash,
 * every write exactly once.
 *
 * Runs three reference servers as child processes (127.0.0.1:0, each on a temporary data
 * directory, all trusting the same two platforms) and the `continuity` CLI as a person would;
 * exits 0 when the story verifies and 1 otherwise, and leaves nothing running.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createAssertionTokenProvider,
  createContinuityClient,
  createReplica,
  hasReason,
  v1,
  type ContinuityClient,
  type JsonObject,
  type JsonStream,
  type Replica,
  type SubjectMovedEvent,
  type WriteRejected,
} from "../src/index.js";
import { runContinuityCli, type CliRun } from "./support/continuity-cli.js";
import { createDemoPlatforms, startDemoServer, type DemoPlatforms, type DemoServer } from "./support/demo-server.js";
import { listAllDeltas, listHeads, type StreamHead } from "./support/subject-reads.js";

const PLATFORM = "course-a";
const ACCOUNT = "learner-42";
const SHARED = "intro-to-sql-progress";
/** Time between two writes of one device. */
const WRITE_EVERY_MS = 20;
/** Writes each device makes on the first server before the move starts, and on the second after it followed. */
const WRITES_BEFORE = 40;
const WRITES_AFTER = 20;

type Doc = JsonObject;

const failures: string[] = [];
const started = Date.now();
const cleanups: (() => Promise<unknown> | unknown)[] = [];

function step(title: string): void {
  console.log(`\n▸ ${title}`);
}
function sent(text: string): void {
  console.log(`    → ${text}`);
}
function check(ok: boolean, text: string): boolean {
  console.log(`    ${ok ? "✓" : "✗"} ${text}`);
  if (!ok) failures.push(text);
  return ok;
}
function short(hex: string): string {
  return `${hex.slice(0, 12)}…`;
}
function head(version: bigint | undefined, hash: string | undefined): string {
  return version === undefined || hash === undefined ? "—" : `v${version} ${short(hash)}`;
}
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A client for the learner's account on `server`: a device's, or (no device) one that manages her subject. */
function learnerClient(server: DemoServer, device?: { id: string; name: string }): ContinuityClient {
  const client = createContinuityClient({
    address: server.address,
    deadlineMs: 10_000,
    retry: { maxAttempts: 4, baseDelayMs: 50, maxDelayMs: 500 },
    tokenProvider: createAssertionTokenProvider({
      ...(device === undefined ? { scopes: ["state.read", "identity.manage"] } : { deviceId: device.id, deviceDisplayName: device.name }),
      // In production the platform's backend signs this and the app fetches it.
      getAssertion: () => server.assert(PLATFORM, ACCOUNT),
    }),
  });
  cleanups.push(() => client.close());
  return client;
}

/** One of the learner's devices, writing course progress without pause. */
interface Device {
  readonly label: string;
  readonly id: string;
  readonly client: ContinuityClient;
  readonly replica: Replica;
  /** Its streams by id: the shared progress and one of its own. */
  readonly streams: Map<string, JsonStream<Doc>>;
  /** Writes queued per stream id; each one changes the state, so each must become one delta. */
  readonly written: Map<string, number>;
  readonly moves: SubjectMovedEvent[];
  readonly rejected: WriteRejected[];
  /** Writes made in all since the start. */
  total(): number;
}

async function openDevice(server: DemoServer, label: string, id: string, own: { stream: string; write: (doc: Doc, n: number) => void }): Promise<Device & { writeOnce(): Promise<void> }> {
  const client = learnerClient(server, { id, name: `Ana's ${label}` });
  const replica = await createReplica(client, { heartbeatSeconds: 1 });
  cleanups.push(() => replica.close());
  const moves: SubjectMovedEvent[] = [];
  replica.on("moved", (event) => moves.push(event));
  const rejected: WriteRejected[] = [];
  const streams = new Map<string, JsonStream<Doc>>();
  for (const stream of [SHARED, own.stream]) {
    const handle = await replica.openStream<Doc>({ stream, create: { type: "org.example.course-progress", encoding: "json-merge-patch" } });
    handle.on("rejected", (event) => rejected.push(event));
    streams.set(stream, handle);
  }
  const written = new Map<string, number>([...streams.keys()].map((stream) => [stream, 0]));
  let turn = 0;
  const writeOnce = async (): Promise<void> => {
    const stream = turn++ % 2 === 0 ? SHARED : own.stream;
    const n = written.get(stream)! + 1;
    await streams.get(stream)!.update((doc) => {
      if (stream === SHARED) {
        // Both devices write here at once: the SDK rebases on VERSION_CONFLICT by re-running this.
        doc["course"] = "intro-to-sql";
        doc["lastDevice"] = id;
        doc[id] = n;
      } else {
        own.write(doc, n);
      }
    });
    written.set(stream, n);
  };
  const total = () => [...written.values()].reduce((sum, n) => sum + n, 0);
  return { label, id, client, replica, streams, written, moves, rejected, total, writeOnce };
}

/** Writes with each device every WRITE_EVERY_MS until stopped. */
function keepWriting(devices: readonly (Device & { writeOnce(): Promise<void> })[]): { stop(): Promise<void> } {
  let stopped = false;
  const loops = devices.map(async (device) => {
    while (!stopped) {
      await device.writeOnce();
      await sleep(WRITE_EVERY_MS);
    }
  });
  return {
    async stop() {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting until ${what}`);
    await sleep(20);
  }
}

/** What the source said while the subject moved away from it. */
interface SourceView {
  /** Each stream's last head the source answered with. */
  readonly last: Map<string, StreamHead>;
  /** Every head it answered with, once per version. */
  readonly seen: StreamHead[];
  /** Resolves with the `target` of the SUBJECT_MOVED the source finally answered; rejects on any other failure. */
  readonly redirected: Promise<string>;
}

/**
 * Reads the subject's heads on the source as fast as it answers, until it answers
 * SUBJECT_MOVED. Reads go on while the source holds writes for the switch, so the last answer
 * is the source's last word; every head it ever showed must be in the target's chains.
 */
function watchSourceHeads(client: ContinuityClient, subject: string): SourceView {
  const last = new Map<string, StreamHead>();
  const seen: StreamHead[] = [];
  const redirected = (async () => {
    for (;;) {
      try {
        for (const [id, stream] of await listHeads(client, subject)) {
          if (last.get(id)?.headVersion !== stream.headVersion) seen.push(stream);
          last.set(id, stream);
        }
      } catch (error) {
        if (hasReason(error, "SUBJECT_MOVED")) return error.metadata["target"] ?? "";
        throw error;
      }
      await sleep(5);
    }
  })();
  // Awaited later; until then a failure must not count as unhandled.
  redirected.catch(() => undefined);
  return { last, seen, redirected };
}

async function main(): Promise<void> {
  const workDir = await mkdtemp(join(tmpdir(), "continuity-demo-migrate-"));
  cleanups.push(() => rm(workDir, { recursive: true, force: true }));

  step("Two vendors each run a reference server for the same course platforms");
  const platforms: DemoPlatforms = await createDemoPlatforms();
  cleanups.push(() => platforms.close());
  // The age key is made now, alongside the servers: a CLI process takes seconds to start.
  const keyFile = join(workDir, "ana.age-key.txt");
  const keygen = runContinuityCli(["keygen", "-o", keyFile]);
  const starting = [startDemoServer({ platforms }), startDemoServer({ platforms })];
  for (const server of starting) cleanups.push(async () => (await server.catch(() => undefined))?.close());
  const [vendorA, vendorB] = (await Promise.all(starting)) as [DemoServer, DemoServer];
  sent(`vendor A listens on ${vendorA.address}, vendor B on ${vendorB.address}; each on its own SQLite data directory`);

  step(`Ana (${PLATFORM} account ${ACCOUNT}) studies on her laptop and her phone, on vendor A`);
  const laptop = await openDevice(vendorA, "laptop", "ana-laptop", {
    stream: "intro-to-sql-video",
    write: (doc, n) => {
      doc["video"] = "lesson-4";
      doc["seconds"] = n * 5;
    },
  });
  const phone = await openDevice(vendorA, "phone", "ana-phone", {
    stream: "intro-to-sql-quiz",
    write: (doc, n) => {
      doc[`question-${n}`] = "ABCD".charAt(n % 4);
    },
  });
  const devices = [laptop, phone];
  const sourceSubject = laptop.replica.subject;
  sent(`subject ${sourceSubject}; devices ${laptop.replica.device} and ${phone.replica.device}`);
  const writing = keepWriting(devices);
  await until(() => devices.every((device) => device.total() >= WRITES_BEFORE), 30_000, "both devices wrote on vendor A");
  sent(`writing every ${WRITE_EVERY_MS} ms: laptop to ${SHARED} and intro-to-sql-video, phone to ${SHARED} and intro-to-sql-quiz`);
  sent(`so far the laptop wrote ${laptop.total()} times and the phone ${phone.total()}; the shared stream is at ${head(laptop.streams.get(SHARED)!.status.confirmedVersion, laptop.streams.get(SHARED)!.status.headHash)}`);

  step("The platform moves Ana live to vendor B: CreateMigration on B, with a token for her subject on A");
  const onB = learnerClient(vendorB);
  const { subject: targetSubject } = await onB.session();
  const onA = learnerClient(vendorA);
  const { accessToken: sourceAccessToken } = await onA.tokens.exchangeToken({
    grantType: "urn:ietf:params:oauth:grant-type:token-exchange",
    subjectTokenType: "urn:ietf:params:oauth:token-type:jwt",
    subjectToken: await vendorA.assert(PLATFORM, ACCOUNT),
    scope: "identity.manage",
  });
  const watcher = watchSourceHeads(onA, sourceSubject);
  const created = await onB.portability.createMigration({ parent: targetSubject, source: vendorA.address, sourceAccessToken, sourceSubject });
  const migrationName = created.migration?.name ?? "";
  sent(`${migrationName} created on vendor B (Ana's subject there: ${targetSubject}); the devices keep writing`);
  let migration = created.migration;
  let reported: v1.MigrationState | undefined;
  const migrationDeadline = Date.now() + 30_000;
  for (;;) {
    if (migration !== undefined && migration.state !== reported) {
      reported = migration.state;
      const progress = migration.recordsTotal === 0n ? "started" : `${migration.recordsCopied} of ${migration.recordsTotal} records copied, ${migration.lagDeltas} deltas behind`;
      sent(`${v1.migrationStateToJSON(migration.state).replace("MIGRATION_STATE_", "")}: ${progress}; the laptop has written ${laptop.total()} times, the phone ${phone.total()}`);
    }
    const state = migration?.state;
    if (state === v1.MigrationState.MIGRATION_STATE_COMPLETED || state === v1.MigrationState.MIGRATION_STATE_FAILED || state === v1.MigrationState.MIGRATION_STATE_CANCELLED) break;
    if (Date.now() > migrationDeadline) throw new Error(`the migration did not end within 30 s (state ${state === undefined ? "unknown" : v1.migrationStateToJSON(state)})`);
    await sleep(25);
    migration = (await onB.portability.getMigration({ name: migrationName })).migration;
  }
  if (migration?.state !== v1.MigrationState.MIGRATION_STATE_COMPLETED) {
    check(false, `the migration completed${migration === undefined ? "" : `: ${migration.error}`}`);
    return;
  }

  step("The devices follow the redirect (SUBJECT_MOVED) and keep writing, now on vendor B");
  await until(() => devices.every((device) => device.moves.length > 0), 20_000, "both devices followed the move");
  for (const device of devices) {
    const [move] = device.moves;
    sent(`${device.label}: moved from ${move?.previousAddress} to ${move?.address}, ${move?.previousSubject} → ${move?.subject}`);
  }
  const afterMove = new Map(devices.map((device) => [device, device.total()]));
  await until(() => devices.every((device) => device.total() >= afterMove.get(device)! + WRITES_AFTER), 30_000, "both devices wrote on vendor B");
  await writing.stop();
  await Promise.all(devices.flatMap((device) => [...device.streams.values()].map((handle) => handle.settled({ signal: AbortSignal.timeout(30_000) }))));
  await Promise.all(devices.map((device) => device.replica.settled({ signal: AbortSignal.timeout(30_000) })));
  sent(`the learner stops: the laptop wrote ${laptop.total()} times, the phone ${phone.total()}; every write acknowledged`);
  const pauseMs = migration.switchPause === undefined ? undefined : Number(migration.switchPause.seconds) * 1000 + migration.switchPause.nanos / 1e6;
  sent(`GetMigration: ${migration.recordsCopied} records (${migration.bytesCopied} bytes) copied; writes were held for ${pauseMs === undefined ? "(not reported)" : `${pauseMs.toFixed(1)} ms`} at the switch`);
  for (const device of devices) {
    check(
      device.moves.length === 1 && device.moves[0]?.address === vendorB.address && device.moves[0].subject === targetSubject && device.client.address === vendorB.address,
      `the ${device.label} heard of the move once (one "moved" event) and now talks to vendor B as ${device.replica.device}`,
    );
    const halted = [...device.streams.values()].filter((handle) => handle.status.halted !== undefined);
    check(device.rejected.length === 0 && halted.length === 0, `the ${device.label} lost no write: none rejected, no stream halted`);
  }
  check(pauseMs !== undefined && pauseMs < 1_000, "GetMigration reports the switch pause, under a second");

  step("Heads on both servers: vendor A's last answer before it redirected, and vendor B's chains");
  const redirect = await withTimeout(watcher.redirected, 10_000, "vendor A never answered SUBJECT_MOVED");
  check(redirect === vendorB.address, `vendor A now answers Ana's calls with SUBJECT_MOVED, naming vendor B (${redirect})`);
  const headsB = await listHeads(onB, targetSubject);
  const deltasB = new Map(await Promise.all([...headsB.values()].map(async (stream) => [stream.id, await listAllDeltas(onB, `${targetSubject}/streams/${stream.id}`)] as const)));
  const hashAt = (stream: string, version: bigint): string | undefined => {
    const delta = deltasB.get(stream)?.[Number(version) - 1];
    return delta === undefined ? undefined : Buffer.from(delta.hash).toString("hex");
  };
  sent("after the switch vendor A answers every call for Ana with SUBJECT_MOVED, so its side is its last answer before that;");
  sent("the writes it held at the switch, and every later one, went to vendor B");
  console.log(`\n    ${"stream".padEnd(24)}${"vendor A, last answer".padEnd(24)}${"vendor B, same version".padEnd(24)}${"vendor B now".padEnd(20)}the devices verified`);
  for (const [id, onTarget] of headsB) {
    const source = watcher.last.get(id);
    const atSwitch = source === undefined ? undefined : hashAt(id, source.headVersion);
    const views = devices.filter((device) => device.streams.has(id)).map((device) => `${device.label} ${head(device.streams.get(id)!.status.confirmedVersion, device.streams.get(id)!.status.headHash)}`);
    console.log(
      `    ${id.padEnd(24)}${head(source?.headVersion, source?.headHash).padEnd(24)}${head(source?.headVersion, atSwitch).padEnd(24)}${head(onTarget.headVersion, onTarget.headHash).padEnd(20)}${views.join(", ")}`,
    );
  }
  console.log("");
  for (const [id, source] of watcher.last) {
    const onTarget = headsB.get(id);
    check(onTarget !== undefined && onTarget.uid === source.uid && hashAt(id, source.headVersion) === source.headHash, `${id}: vendor B holds vendor A's last head v${source.headVersion} with the same hash, same uid`);
  }
  const unseen = watcher.seen.filter((stream) => hashAt(stream.id, stream.headVersion) !== stream.headHash);
  check(watcher.seen.length > 0 && unseen.length === 0, `all ${watcher.seen.length} heads vendor A showed while Ana moved are in vendor B's chains, hash for hash`);
  for (const [id, onTarget] of headsB) {
    const views = devices.map((device) => device.streams.get(id)).filter((handle) => handle !== undefined);
    check(views.every((handle) => handle.status.confirmedVersion === onTarget.headVersion && handle.status.headHash === onTarget.headHash), `${id}: vendor B's head ${head(onTarget.headVersion, onTarget.headHash)} equals what ${views.length === 2 ? "both devices" : "the device"} verified`);
  }

  step("Nothing lost, nothing twice: every delta on vendor B, by device and client sequence");
  for (const [id, deltas] of deltasB) {
    const linked = deltas.every((delta, index) => delta.version === BigInt(index + 1) && (index === 0 || Buffer.from(delta.prevHash).equals(Buffer.from(deltas[index - 1]!.hash))));
    const parts: string[] = [];
    let exact = linked && BigInt(deltas.length) === headsB.get(id)?.headVersion;
    let counted = 0;
    for (const device of devices) {
      const wrote = device.written.get(id);
      if (wrote === undefined) continue;
      const sequences = deltas.filter((delta) => delta.device === `${targetSubject}/devices/${device.id}`).map((delta) => Number(delta.clientSequence));
      const distinct = new Set(sequences);
      const missing = Array.from({ length: wrote }, (_, index) => index + 1).filter((sequence) => !distinct.has(sequence)).length;
      const twice = sequences.length - distinct.size;
      const stray = [...distinct].filter((sequence) => sequence < 1 || sequence > wrote).length;
      const once = missing === 0 && twice === 0 && stray === 0;
      exact &&= once;
      counted += sequences.length;
      const verdict = once ? "each once" : [missing > 0 ? `${missing} MISSING` : "", twice > 0 ? `${twice} TWICE` : "", stray > 0 ? `${stray} never written` : ""].filter(Boolean).join(", ");
      parts.push(`${device.label} wrote ${wrote}, vendor B holds ${sequences.length} (client sequences 1…${wrote}: ${verdict})`);
    }
    exact &&= counted === deltas.length;
    check(exact, `${id}: ${parts.join("; ")}; ${deltas.length} deltas in one unbroken chain`);
  }
  const shared = devices.map((device) => device.streams.get(SHARED)!.confirmedState);
  check(
    JSON.stringify(shared[0]) === JSON.stringify(shared[1]) && devices.every((device) => shared[0]?.[device.id] === device.written.get(SHARED)),
    `both devices show the same progress: ${devices.map((device) => `${device.id} at write ${String(shared[0]?.[device.id])}`).join(", ")}`,
  );
  for (const device of devices) await device.replica.close();

  step("Ana takes everything out of vendor B: an age-encrypted, gzip-compressed bundle file");
  // Vendor C is started now, while the export runs.
  const startingC = startDemoServer({ platforms });
  cleanups.push(async () => (await startingC.catch(() => undefined))?.close());
  const keys = await expectCli(await keygen, "keygen");
  const recipient = /Public key: (\S+)/.exec(keys.stdout)?.[1] ?? "";
  sent(`her age key is in ${keyFile} (recipient ${recipient.slice(0, 16)}…)`);
  const bundleFile = join(workDir, "ana.cbundle.gz.age");
  const signIn = (server: DemoServer) => ["--server", server.address, "--platform-id", PLATFORM, "--platform-key", platforms.keyFile(PLATFORM), "--account", ACCOUNT];
  const exported = await expectCli(await runContinuityCli(["--json", "export", ...signIn(vendorB), "--gzip", "--encrypt-to", recipient, "-o", bundleFile]), "export");
  const exportSummary = JSON.parse(exported.stdout) as { subject: string; records: number; streams: number; fileBytes: number; bundleBytes: number; layers: string[]; recordsDigest: string };
  sent(`${exportSummary.records} records of ${exportSummary.streams} streams from ${exportSummary.subject}: ${exportSummary.bundleBytes} bytes as a bundle, ${exportSummary.fileBytes} in the file (${exportSummary.layers.join(", then ")})`);

  step("Checked offline, against the keys vendor B publishes (GetServerInfo.bundle_signing_jwks)");
  const { bundleSigningJwks } = await onB.serverInfo.getServerInfo({});
  const jwksFile = join(workDir, "vendor-b.jwks.json");
  await writeFile(jwksFile, bundleSigningJwks);
  const kids = (JSON.parse(bundleSigningJwks) as { keys: { kid?: string }[] }).keys.map((key) => key.kid);
  sent(`saved vendor B's bundle signing keys (${kids.join(", ")}) to ${jwksFile}`);
  const verified = await expectCli(await runContinuityCli(["verify", bundleFile, "--identity", keyFile, "--jwks", jwksFile]), "verify");
  for (const line of verified.stdout.trimEnd().split("\n")) console.log(`      ${line}`);
  check(verified.stdout.includes("the bundle verifies") && verified.stdout.includes(`one of the keys in ${jwksFile}`), "every hash chain, the records digest and vendor B's signature verify, with no server asked");

  step("Into a third server: vendor C");
  const vendorC = await startingC;
  sent(`vendor C listens on ${vendorC.address}`);
  const imported = await expectCli(await runContinuityCli(["--json", "import", bundleFile, "--identity", keyFile, "--jwks", jwksFile, ...signIn(vendorC)]), "import");
  const importSummary = JSON.parse(imported.stdout) as { subject: string; records: number; recordsImported: string; recordsSkipped: string };
  sent(`imported into ${importSummary.subject}: ${importSummary.recordsImported} records stored, ${importSummary.recordsSkipped} skipped`);
  // The reference server takes account links only from bundles signed by a key it trusts
  // (its own; `trustedBundleKeys` when embedded, no command-line setting): vendor C does not
  // trust vendor B's key, so the bundle's link is skipped, and Ana's sign-in on C made her own.
  sent(`account links: skipped by design (PORT-014), since vendor C does not trust vendor B's signing key; Ana's sign-in on vendor C linked her account there`);
  check(Number(importSummary.recordsImported) + Number(importSummary.recordsSkipped) === exportSummary.records, `every record of the bundle was read: ${exportSummary.records} = ${importSummary.recordsImported} + ${importSummary.recordsSkipped}`);
  const onC = learnerClient(vendorC);
  const { subject: subjectC } = await onC.session();
  check(subjectC === importSummary.subject, `Ana's ${PLATFORM} account signs in to her imported subject on vendor C (${subjectC})`);
  const headsC = await listHeads(onC, subjectC);
  console.log(`\n    ${"stream".padEnd(24)}${"vendor B".padEnd(22)}vendor C`);
  for (const [id, onTarget] of headsB) console.log(`    ${id.padEnd(24)}${head(onTarget.headVersion, onTarget.headHash).padEnd(22)}${head(headsC.get(id)?.headVersion, headsC.get(id)?.headHash)}`);
  console.log("");
  for (const [id, onTarget] of headsB) {
    const copy = headsC.get(id);
    check(copy !== undefined && copy.uid === onTarget.uid && copy.headVersion === onTarget.headVersion && copy.headHash === onTarget.headHash, `${id}: vendor C's head equals vendor B's, ${head(onTarget.headVersion, onTarget.headHash)}`);
  }
  check(headsC.size === headsB.size, `vendor C holds exactly vendor B's ${headsB.size} streams`);
}

/** A CLI run that must succeed: shows its command line, and turns a failure into the story's. */
async function expectCli(run: CliRun, what: string): Promise<CliRun> {
  sent(`$ ${run.commandLine.replace(/ --platform-key \S+/, " --platform-key …/course-a.private.jwk")}`);
  if (run.code !== 0) throw new Error(`continuity ${what} exited with ${run.code}:\n${run.stderr}${run.stdout}`);
  return run;
}

try {
  await main();
} catch (error) {
  failures.push(error instanceof Error ? error.message : String(error));
  console.error(error);
} finally {
  for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => undefined);
}
const seconds = ((Date.now() - started) / 1000).toFixed(1);
if (failures.length === 0) {
  console.log(`\nThe story verifies (${seconds} s).`);
  process.exitCode = 0;
} else {
  console.log(`\nThe story does NOT verify (${seconds} s):\n${failures.map((failure) => `  - ${failure}`).join("\n")}`);
  process.exitCode = 1;
}
