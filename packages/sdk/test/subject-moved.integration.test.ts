import { afterEach, expect, it } from "vitest";
import {
  createAssertionTokenProvider,
  createContinuityClient,
  createReplica,
  v1,
  type ContinuityClient,
  type SubjectMovedEvent,
  type WriteRejected,
} from "../src/index.js";
import type { Delta } from "../src/gen/continuity/v1/stream_service.js";
import type { PlatformBackend } from "../examples/support/platform-backend.js";
import { deviceClient, startReferenceServer } from "./support/reference-server.js";

// A live migration between two real reference servers while a device keeps writing: the
// replica follows SUBJECT_MOVED, every write lands on the target exactly once, and the
// application hears of the move once.

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A client with scope `identity.manage`, which export and migration need. */
function managerClient(address: string, platform: PlatformBackend, accountId: string): ContinuityClient {
  const client = createContinuityClient({
    address,
    tokenProvider: createAssertionTokenProvider({ scopes: ["identity.manage"], getAssertion: () => platform.assert(accountId) }),
    deadlineMs: 10_000,
  });
  cleanups.push(() => client.close());
  return client;
}

/** An access token for the account on `address`, as CreateMigration takes it for the source. */
async function accessToken(client: ContinuityClient, platform: PlatformBackend, accountId: string): Promise<string> {
  const { accessToken: token } = await client.tokens.exchangeToken({
    grantType: "urn:ietf:params:oauth:grant-type:token-exchange",
    subjectTokenType: "urn:ietf:params:oauth:token-type:jwt",
    subjectToken: await platform.assert(accountId),
    scope: "identity.manage",
    deviceId: "",
    deviceDisplayName: "",
  });
  return token;
}

async function allDeltas(client: ContinuityClient, stream: string): Promise<Delta[]> {
  const deltas: Delta[] = [];
  for (;;) {
    const page = await client.streams.listDeltas({ stream, afterVersion: BigInt(deltas.length) });
    deltas.push(...page.deltas);
    if (page.deltas.length === 0 || BigInt(deltas.length) >= page.headVersion) return deltas;
  }
}

it("follows a live migration while writing: every write lands on the target once, and moved fires once", { timeout: 120_000 }, async () => {
  const source = await startReferenceServer();
  cleanups.push(() => source.dispose());
  const target = await startReferenceServer({ platformsOf: source });
  cleanups.push(() => target.dispose());
  const account = "mia";

  const laptopClient = deviceClient(source.address, source.platformA, account, "laptop", { deadlineMs: 10_000 });
  cleanups.push(() => laptopClient.close());
  const replica = await createReplica(laptopClient);
  cleanups.push(() => replica.close());
  const moves: SubjectMovedEvent[] = [];
  const clientMoves: SubjectMovedEvent[] = [];
  replica.on("moved", (event) => moves.push(event));
  laptopClient.on("moved", (event) => clientMoves.push(event));
  const sourceSubject = replica.subject;

  type Log = { items?: number[] };
  const log = await replica.openStream<Log>({ stream: "log", create: { type: "org.example.log", encoding: "json-patch" } });
  const rejected: WriteRejected[] = [];
  log.on("rejected", (event) => rejected.push(event));
  await log.update((draft) => {
    draft.items = [];
  });
  await replica.whenConnected();

  // One write every few milliseconds, before, during and after the migration.
  let written = 0;
  let stop = false;
  const writer = (async () => {
    while (!stop) {
      written += 1;
      const n = written;
      await log.update((draft) => {
        draft.items = [...(draft.items ?? []), n];
      });
      await sleep(5);
    }
  })();
  await sleep(200);

  // The person starts the move on the target, handing it a token for the source.
  const onTarget = managerClient(target.address, target.platformA, account);
  const { subject: targetSubject } = await onTarget.session();
  const sourceToken = await accessToken(managerClient(source.address, source.platformA, account), source.platformA, account);
  const { migration } = await onTarget.portability.createMigration({
    parent: targetSubject,
    source: source.address,
    sourceAccessToken: sourceToken,
    sourceSubject,
  });
  expect(migration).toBeDefined();
  let state = migration!.state;
  for (const deadline = Date.now() + 60_000; state !== v1.MigrationState.MIGRATION_STATE_COMPLETED; ) {
    if (state === v1.MigrationState.MIGRATION_STATE_FAILED || Date.now() > deadline) {
      const { migration: failed } = await onTarget.portability.getMigration({ name: migration!.name });
      throw new Error(`the migration did not complete: state ${state}, ${failed?.error ?? ""}`);
    }
    await sleep(50);
    state = (await onTarget.portability.getMigration({ name: migration!.name })).migration?.state ?? v1.MigrationState.MIGRATION_STATE_UNSPECIFIED;
  }

  // Writing goes on until the replica has followed, and a little after.
  for (const deadline = Date.now() + 20_000; moves.length === 0 && Date.now() < deadline; ) await sleep(20);
  const afterMove = written;
  while (written < afterMove + 20) await sleep(10);
  stop = true;
  await writer;
  await log.settled({ signal: AbortSignal.timeout(30_000) });

  expect(moves).toEqual([{ address: target.address, previousAddress: source.address, subject: targetSubject, previousSubject: sourceSubject }]);
  expect(clientMoves).toHaveLength(1);
  expect(laptopClient.address).toBe(target.address);
  expect(replica.subject).toBe(targetSubject);
  expect(log.name).toBe(`${targetSubject}/streams/log`);
  expect(rejected).toEqual([]);
  expect(log.status.halted).toBeUndefined();

  // Every write, once, in order, on the target; each delta numbered by this device.
  const expected = Array.from({ length: written }, (_, index) => index + 1);
  const reader = deviceClient(target.address, target.platformA, account, "tablet");
  cleanups.push(() => reader.close());
  const deltas = await allDeltas(reader, log.name);
  expect(deltas).toHaveLength(written + 1);
  expect(deltas.map((delta) => delta.clientSequence)).toEqual(deltas.map((_, index) => BigInt(index + 1)));
  expect(new Set(deltas.map((delta) => delta.device))).toEqual(new Set([`${targetSubject}/devices/laptop`]));
  expect(log.confirmedState).toEqual({ items: expected });
  const { stream } = await reader.streams.getStream({ name: log.name });
  expect(log.status.confirmedVersion).toBe(stream?.headVersion);
  expect(log.status.headHash).toBe(Buffer.from(stream!.headHash).toString("hex"));

  // The source redirects whoever still asks it.
  const late = deviceClient(source.address, source.platformA, account, "phone");
  cleanups.push(() => late.close());
  await expect(late.streams.getStream({ name: `${sourceSubject}/streams/log` })).rejects.toMatchObject({ reason: "SUBJECT_MOVED" });
});
