import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  createLinkCode,
  createMemoryQueueStore,
  createReplica,
  grantStreamAccess,
  redeemLinkCode,
  Status,
  type ContinuityClient,
  type ContinuityError,
  type HandoffOffer,
  type Replica,
} from "../src/index.js";
import type { AccessRevoked } from "../src/gen/continuity/v1/subscription_service.js";
import { deviceClient, startReferenceServer, type RunningServer } from "./support/reference-server.js";
import { waitFor } from "./support/wait.js";

// The replica's live subscription against the reference server: resumption across a server
// restart, and the terminal statuses the design note defines.

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function track<T extends { close(): unknown }>(value: T): T {
  cleanups.push(async () => {
    await value.close();
  });
  return value;
}

type Doc = { value?: number };

describe("replica subscription", () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startReferenceServer();
  });
  afterAll(async () => {
    await server.dispose();
  });

  const client = (account: string, device: string, platform = server.platformA): ContinuityClient =>
    track(deviceClient(server.address, platform, account, device));

  it("ends with DEVICE_REVOKED when the device is revoked, and stops reconnecting", async () => {
    const laptopClient = client("fay", "laptop");
    await createReplica(laptopClient).then(track);
    const phone = track(await createReplica(client("fay", "phone")));
    await phone.whenConnected();
    const ended: ContinuityError[] = [];
    phone.on("ended", (error) => ended.push(error));
    await laptopClient.devices.revokeDevice({ name: phone.device });
    await waitFor(() => ended.length === 1, "the phone's subscription ends");
    expect(["DEVICE_REVOKED", "TOKEN_REVOKED"]).toContain(ended[0]?.reason);
    expect(phone.connected).toBe(false);
  });

  it("reports revoked access, then carries on without the lost streams", async () => {
    const laptopClient = client("gil-a", "laptop");
    const laptop = track(await createReplica(laptopClient));
    const shared = await laptop.openStream<Doc>({ stream: "shared", create: { type: "org.example.shared" } });
    const { code } = await createLinkCode(laptopClient);
    const tabletClient = client("gil-b", "tablet", server.platformB);
    await redeemLinkCode(tabletClient, { code, assertion: await server.platformB.assert("gil-b") });
    const grant = await grantStreamAccess(laptopClient, { platform: "demo-b", streamType: "org.example.shared", access: "read" });
    const tablet = track(await createReplica(tabletClient));
    const onTablet = await tablet.openStream<Doc>({ stream: shared.name });
    await tablet.whenConnected();
    await shared.update({ value: 1 });
    await waitFor(() => onTablet.confirmedState.value === 1, "the tablet sees the shared write");

    const revoked: AccessRevoked[] = [];
    const connections: boolean[] = [];
    tablet.on("accessRevoked", (event) => revoked.push(event));
    tablet.on("connection", (event) => connections.push(event.connected));
    await laptopClient.consent.revokeGrant({ name: grant.name });
    await waitFor(() => revoked.length === 1, "the tablet is told about the revocation");
    expect(revoked[0]?.streams).toContain(shared.name);
    await waitFor(() => tablet.connected && connections.includes(false), "the tablet resubscribes after GRANT_REVOKED");
    await expect(onTablet.refresh()).rejects.toMatchObject({ reason: "STREAM_NOT_FOUND" });
  });

  it("refuses a second handle on a stream that is already open, until the first closes", async () => {
    const replica = track(await createReplica(client("ivy", "laptop")));
    const first = await replica.openStream<Doc>({ stream: "once", create: { type: "org.example.once" } });
    await expect(replica.openStream<Doc>({ stream: first.name })).rejects.toMatchObject({ code: Status.FAILED_PRECONDITION });
    await first.close();
    const second = await replica.openStream<Doc>({ stream: "once" });
    expect(second.name).toBe(first.name);
  });

  it("fires handoff offers only on other devices and lets a device decline", async () => {
    const laptopClient = client("hal", "laptop");
    const laptop = track(await createReplica(laptopClient));
    const phone = track(await createReplica(client("hal", "phone")));
    await Promise.all([laptop.whenConnected(), phone.whenConnected()]);
    const progress = await laptop.openStream<Doc>({ stream: "p", create: { type: "org.example.p" } });
    await progress.update({ value: 2 });
    const onLaptop: unknown[] = [];
    const onPhone: HandoffOffer[] = [];
    laptop.on("handoffOffered", (offer) => onLaptop.push(offer));
    phone.on("handoffOffered", (offer) => onPhone.push(offer));
    const { handoff } = await laptop.handOff({ streams: [progress], resume: { activityType: "org.example.p" } });
    await waitFor(() => onPhone.length === 1, "the phone gets the offer");
    const declined = await onPhone[0]!.decline();
    expect(declined.name).toBe(handoff.name);
    expect(declined.resolvedBy).toBe(phone.device);
    expect(onLaptop).toHaveLength(0);
  });
});

describe("replica subscription with a cursor the server cannot resume", () => {
  it("is reset, stores a fresh cursor and goes on", async () => {
    const [home, elsewhere] = await Promise.all([startReferenceServer(), startReferenceServer()]);
    cleanups.push(() => home.dispose(), () => elsewhere.dispose());
    // A cursor minted by another server (another store epoch).
    const stranger = track(deviceClient(elsewhere.address, elsewhere.platformA, "jo", "phone"));
    const { subject } = await stranger.session();
    let foreignCursor = "";
    for await (const message of stranger.subscriptions.subscribe({ parent: subject })) {
      foreignCursor = message.cursor;
      break;
    }
    const store = createMemoryQueueStore();
    const phoneClient = track(deviceClient(home.address, home.platformA, "jo", "phone"));
    const session = await phoneClient.session();
    await store.write(`cursor/${session.device}`, foreignCursor);
    const phone = track(await createReplica(phoneClient, { store }));
    const resets: string[] = [];
    phone.on("reset", (event) => resets.push(event.reason));
    await phone.whenConnected();
    await waitFor(() => resets.length === 1, "the replica is reset");
    await waitFor(() => store.entries.get(`cursor/${session.device}`) !== foreignCursor, "a fresh cursor replaces the foreign one");
    expect(phone.connected).toBe(true);
  });
});

describe("replica subscription across a server restart", () => {
  it("resumes from its cursor and applies what happened while it was away", async () => {
    let server = await startReferenceServer();
    cleanups.push(() => server.dispose());
    const writerClient = track(deviceClient(server.address, server.platformA, "ida", "laptop"));
    const readerClient = track(deviceClient(server.address, server.platformA, "ida", "phone"));
    const writer = track(await createReplica(writerClient));
    const reader: Replica = track(await createReplica(readerClient, { heartbeatSeconds: 1 }));
    const onWriter = await writer.openStream<Doc>({ stream: "counter", create: { type: "org.example.counter" } });
    const onReader = await reader.openStream<Doc>({ stream: "counter" });
    await reader.whenConnected();
    await onWriter.update({ value: 1 });
    await waitFor(() => onReader.confirmedState.value === 1, "the reader sees the first write live");

    server = await server.restart();
    await onWriter.update({ value: 2 });
    onWriter.flush();
    await onWriter.settled();
    await waitFor(() => onReader.confirmedState.value === 2, "the reader catches up after reconnecting", 20_000);
    expect(onReader.status.headHash).toBe(onWriter.status.headHash);
    expect(onReader.status.confirmedVersion).toBe(2n);
  });
});
