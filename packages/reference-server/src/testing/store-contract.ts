import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { AppendInput, AppendResult, BuiltBatch, Store, StoreNotification } from "../store/types.js";
import { Encoding, Policy } from "../store/types.js";
import { SubjectHeldError } from "../store/replica-state-types.js";

/**
 * Behaviour every {@link Store} backend must show, written against the interface only, so
 * that a PostgreSQL store can run the same cases as the SQLite one. Backend-specific checks
 * (schema, durability, group sizes) stay in the backend's own tests.
 *
 * `open` returns a fresh, empty store for each case.
 */
export function describeStoreContract(name: string, open: () => Promise<{ store: Store; close(): Promise<void> }>): void {
  const now = new Date("2026-01-01T00:00:00Z");
  const hash = (n: number) => new Uint8Array(32).fill(n);

  async function withStore(run: (store: Store) => Promise<void>): Promise<void> {
    const { store, close } = await open();
    try {
      await store.createSubjectWithLink({ subjectId: "s1", linkId: "l1", platformId: "p", accountId: "acct", now });
      await store.createStream({
        subjectId: "s1",
        id: "st",
        uid: "00000000-0000-4000-8000-000000000001",
        type: "org.example.t",
        encoding: Encoding.Opaque,
        conflictPolicy: Policy.AllowBlindAppend,
        ownerPlatformId: "p",
        genesisHash: hash(0),
        initialState: undefined,
        maxStreamsPerSubject: 10,
        now,
      });
      await run(store);
    } finally {
      await close();
    }
  }

  function append(store: Store, device: string, seq: number, overrides: Partial<AppendInput> = {}): Promise<AppendResult> {
    return store.appendBatch({
      subjectId: "s1",
      streamId: "st",
      streamUid: "00000000-0000-4000-8000-000000000001",
      deviceId: device,
      clientSequence: seq,
      fingerprint: new Uint8Array([seq]),
      expectedVersion: undefined,
      now,
      build: ({ stream }): BuiltBatch => ({
        deltas: [{ payload: new Uint8Array([seq]), prevHash: stream.headHash, hash: hash(stream.headVersion + 1) }],
      }),
      ...overrides,
    });
  }

  describe(`Store contract: ${name}`, () => {
    it("gives concurrent appends consecutive versions and each its own outcome", () =>
      withStore(async (store) => {
        const results = await Promise.all(Array.from({ length: 6 }, (_, i) => append(store, `d${i}`, 1)));
        const heads = results.map((r) => (r.kind === "committed" ? r.outcome.headVersion : -1)).sort((a, b) => a - b);
        expect(heads).toEqual([1, 2, 3, 4, 5, 6]);
        const deltas = await store.listDeltas("s1", "st", 0, 100);
        deltas.forEach((d, i) => {
          expect(d.version).toBe(i + 1);
          expect(Buffer.from(d.prevHash)).toEqual(Buffer.from(i === 0 ? hash(0) : deltas[i - 1]!.hash));
        });
      }));

    it("isolates a refused append from the appends around it", () =>
      withStore(async (store) => {
        const [a, refused, b] = await Promise.all([
          append(store, "a", 1),
          append(store, "b", 1, {
            build: () => {
              throw new Error("refused");
            },
          }),
          append(store, "c", 1),
        ]);
        expect([a?.kind, refused?.kind, b?.kind]).toEqual(["committed", "rejected", "committed"]);
        expect((await store.getStream("s1", "st"))?.headVersion).toBe(2);
        expect((await append(store, "b", 1)).kind).toBe("committed");
      }));

    it("refuses an append to a stream that was deleted and recreated under the same id", () =>
      withStore(async (store) => {
        await store.deleteStream("s1", "st", now);
        await store.createStream({
          subjectId: "s1",
          id: "st",
          uid: "00000000-0000-4000-8000-000000000002",
          type: "org.example.t",
          encoding: Encoding.Opaque,
          conflictPolicy: Policy.AllowBlindAppend,
          ownerPlatformId: "q",
          genesisHash: hash(0),
          initialState: undefined,
          maxStreamsPerSubject: 10,
          now,
        });
        // The caller checked access to the old stream (uid ...0001); it must not land in the new one.
        expect((await append(store, "a", 1)).kind).toBe("stream-not-found");
        expect((await store.getStream("s1", "st"))?.headVersion).toBe(0);
        expect((await append(store, "a", 1, { streamUid: "00000000-0000-4000-8000-000000000002" })).kind).toBe("committed");
      }));

    it("decides client sequences: replay, reuse, gap", () =>
      withStore(async (store) => {
        const first = await append(store, "a", 1);
        await append(store, "other", 1);
        const replay = await append(store, "a", 1, {
          build: () => {
            throw new Error("a replay must not build");
          },
        });
        expect(replay.kind).toBe("replayed");
        if (replay.kind === "replayed" && first.kind === "committed") {
          expect(replay.outcome.headVersion).toBe(first.outcome.headVersion);
          expect(Buffer.from(replay.outcome.headHash)).toEqual(Buffer.from(first.outcome.headHash));
        }
        expect(await append(store, "a", 1, { fingerprint: new Uint8Array([42]) })).toEqual({ kind: "sequence-reused", clientSequence: 1, expectedSequence: 2 });
        expect(await append(store, "a", 3)).toEqual({ kind: "sequence-gap", expectedSequence: 2 });
        const conflict = await append(store, "a", 2, { expectedVersion: 0 });
        expect(conflict).toMatchObject({ kind: "version-conflict", headVersion: 2 });
      }));

    it("keeps the latest outcome of each device on each stream and expires older numbers (APPEND-060, APPEND-061)", () =>
      withStore(async (store) => {
        for (const n of [1, 2, 3]) expect((await append(store, "a", n)).kind).toBe("committed");
        await append(store, "other", 1);
        expect((await append(store, "a", 3)).kind).toBe("replayed");
        expect(await append(store, "other", 1)).toMatchObject({ kind: "replayed" });
        // Older numbers are answered the same whether or not they are the same request.
        expect(await append(store, "a", 2)).toEqual({ kind: "sequence-expired", clientSequence: 2, expectedSequence: 4 });
        expect(await append(store, "a", 1, { fingerprint: new Uint8Array([42]) })).toEqual({ kind: "sequence-expired", clientSequence: 1, expectedSequence: 4 });
        expect((await store.getStream("s1", "st"))?.headVersion).toBe(4);
        expect((await append(store, "a", 4)).kind).toBe("committed");
      }));

    it("logs each change with it, and notifies only committed ones", () =>
      withStore(async (store) => {
        const seen: StoreNotification[] = [];
        store.onNotification((n) => seen.push(n));
        await Promise.all([
          append(store, "a", 1),
          append(store, "b", 1, {
            build: () => {
              throw new Error("no");
            },
          }),
        ]);
        const events = await store.readEvents("s1", 0, 10);
        expect(events.map((e) => [e.sequence, e.body.kind])).toEqual([
          [1, "stream-created"],
          [2, "deltas-appended"],
        ]);
        expect(seen.flatMap((n) => (n.kind === "events" ? n.events.map((e) => e.sequence) : []))).toEqual([2]);
        expect(await store.getEventBounds("s1")).toEqual({ horizon: 0, head: 2 });
        await store.pruneEvents(1);
        expect(await store.getEventBounds("s1")).toEqual({ horizon: 1, head: 2 });
        expect((await store.readEvents("s1", 0, 10)).map((e) => e.sequence)).toEqual([2]);
      }));

    it("reads a batch event back with its stream and deltas, never with those of a stream recreated under its id", () =>
      withStore(async (store) => {
        await append(store, "a", 1);
        await store.deleteStream("s1", "st", now);
        await store.createStream({
          subjectId: "s1",
          id: "st",
          uid: "00000000-0000-4000-8000-000000000002",
          type: "org.example.t",
          encoding: Encoding.Opaque,
          conflictPolicy: Policy.AllowBlindAppend,
          ownerPlatformId: "q",
          genesisHash: hash(0),
          initialState: undefined,
          maxStreamsPerSubject: 10,
          now,
        });
        expect((await append(store, "a", 1, { streamUid: "00000000-0000-4000-8000-000000000002" })).kind).toBe("committed");
        const batches = (await store.readEvents("s1", 0, 10)).flatMap((e) => (e.body.kind === "deltas-appended" ? [e.body] : []));
        expect(batches.map((b) => [b.stream.id, b.firstVersion, b.count, b.deltas.map((d) => d.streamUid)])).toEqual([
          ["st", 1, 1, []],
          ["st", 1, 1, ["00000000-0000-4000-8000-000000000002"]],
        ]);
        expect(batches[1]!.stream).toEqual({ id: "st", uid: "00000000-0000-4000-8000-000000000002", type: "org.example.t", ownerPlatformId: "q" });
        const [delta] = batches[1]!.deltas;
        expect([delta?.version, delta?.deviceId, delta?.clientSequence, Buffer.from(delta!.payload)]).toEqual([1, "a", 1, Buffer.from([1])]);
        expect(await store.findCompactedBatches("s1", 0)).toEqual([]);
      }));

    it("lets the first resolution of a handoff win", () =>
      withStore(async (store) => {
        await append(store, "a", 1);
        await store.createCheckpoint({
          subjectId: "s1",
          id: "cp",
          selectors: [{ streamId: "st", version: undefined }],
          resume: { activityType: "", resource: "", position: "", fallbackUrl: "", attributes: {} },
          deviceId: "a",
          platformId: "p",
          canRead: () => true,
          digest: () => hash(9),
          now,
        });
        const offered = await store.createHandoff({
          subjectId: "s1",
          id: "h",
          checkpointId: "cp",
          sourceDeviceId: "a",
          targetDeviceId: undefined,
          now,
          expiresAt: new Date(now.getTime() + 60_000),
        });
        expect(offered.kind).toBe("created");
        const resolve = (deviceId: string, resolution: "accepted" | "declined") =>
          store.resolveHandoff({ subjectId: "s1", handoffId: "h", deviceId, resolution, now });
        expect((await resolve("a", "accepted")).kind).toBe("not-eligible");
        const results = await Promise.all([resolve("b", "accepted"), resolve("c", "accepted"), resolve("d", "declined")]);
        expect(results.filter((r) => r.kind === "resolved")).toHaveLength(1);
        expect(results.filter((r) => r.kind === "already-resolved")).toHaveLength(2);
      }));

    it("captures checkpoint positions inside the retained history only", () =>
      withStore(async (store) => {
        await append(store, "a", 1);
        await append(store, "a", 2);
        const base = {
          subjectId: "s1",
          resume: { activityType: "", resource: "", position: "", fallbackUrl: "", attributes: {} },
          deviceId: "a",
          platformId: "p",
          canRead: () => true,
          digest: () => hash(9),
          now,
        };
        const created = await store.createCheckpoint({ ...base, id: "c1", selectors: [{ streamId: "st", version: 1 }] });
        expect(created.kind === "created" && Buffer.from(created.checkpoint.entries[0]!.headHash)).toEqual(Buffer.from(hash(1)));
        expect(await store.createCheckpoint({ ...base, id: "c2", selectors: [{ streamId: "st", version: 3 }] })).toMatchObject({
          kind: "ahead-of-head",
          headVersion: 2,
        });
        await store.putSnapshot({
          subjectId: "s1",
          streamId: "st",
          version: 1,
          sizeBytes: 1,
          snapshotHash: hash(5),
          verify: () => true,
          chunks: [new Uint8Array([7])],
          now,
        });
        expect((await store.compactStream({ subjectId: "s1", streamId: "st", horizonVersion: 1, stateAtHorizon: undefined, now })).kind).toBe(
          "compacted",
        );
        expect(await store.createCheckpoint({ ...base, id: "c3", selectors: [{ streamId: "st", version: 0 }] })).toMatchObject({
          kind: "below-horizon",
          horizonVersion: 1,
        });
        expect(await store.createCheckpoint({ ...base, id: "c1", selectors: [{ streamId: "st", version: 2 }] })).toEqual({
          kind: "already-exists",
        });
        const chunks: Uint8Array[] = [];
        for await (const chunk of store.readSnapshotChunks("s1", "st", 1)) chunks.push(chunk);
        expect(chunks.map((c) => [...c])).toEqual([[7]]);
      }));

    it("keeps the free text a platform sends as it was, U+0000 and backslashes included", () =>
      withStore(async (store) => {
        const odd = "a\u0000b\\0c\\";
        const linked = await store.createSubjectWithLink({ subjectId: "s2", linkId: "l2", platformId: "p", accountId: odd, now });
        expect(linked.link.accountId).toBe(odd);
        expect((await store.findAccountLink("p", odd))?.subjectId).toBe("s2");
        expect(await store.findAccountLink("p", "a")).toBeUndefined();
        await store.registerDevice({ subjectId: "s2", deviceId: "d", platformId: "p", displayName: odd, now });
        expect((await store.getDevice("s2", "d"))?.displayName).toBe(odd);
        expect((await store.listAccountLinks("s2", { after: undefined, limit: 10 })).items.map((l) => l.accountId)).toEqual([odd]);
        // A platform id no store can hold sees nothing, rather than failing.
        const none = await store.listStreams("s1", { visibility: { platformId: "\u0000", shared: [] }, type: undefined }, { after: undefined, limit: 10 });
        expect(none.items).toEqual([]);
      }));

    /** A JSON stream `js` of s1, with `versions` deltas of one byte each. */
    async function jsonStream(store: Store, versions: number): Promise<void> {
      await store.createStream({
        subjectId: "s1",
        id: "js",
        uid: "00000000-0000-4000-8000-000000000002",
        type: "org.example.t",
        encoding: Encoding.JsonMergePatch,
        conflictPolicy: Policy.AllowBlindAppend,
        ownerPlatformId: "p",
        genesisHash: hash(0),
        initialState: new TextEncoder().encode("{}"),
        maxStreamsPerSubject: 10,
        now,
      });
      for (let seq = 1; seq <= versions; seq++) {
        await append(store, "a", seq, { streamId: "js", streamUid: "00000000-0000-4000-8000-000000000002" });
      }
    }
    /** `bytes` bytes that differ from chunk to chunk, so that a chunk out of place shows. */
    const stateOf = (bytes: number, seed: number) => {
      const state = new Uint8Array(bytes);
      for (let i = 0; i < bytes; i++) state[i] = (i * 7 + seed + (i >> 16)) % 251;
      return state;
    };
    /** States are compared by digest: a deep comparison of megabytes takes seconds. */
    const digest = (state: Uint8Array) => createHash("sha256").update(state).digest("hex");
    const baseOf = async (store: Store, version: number) => {
      const base = await store.loadStateBase("s1", "js", version);
      if (!("baseState" in base)) return base;
      return { baseVersion: base.baseVersion, state: digest(base.baseState), deltas: base.deltas.map((d) => d.version) };
    };

    it("stores a JSON state of several chunks, names it only once every chunk is written, and reads it back as it was", () =>
      withStore(async (store) => {
        await jsonStream(store, 3);
        const big = stateOf(2 * 1024 * 1024 + 512 * 1024 + 17, 1);
        const initial = { baseVersion: 0, state: digest(Buffer.from("{}")), deltas: [1, 2, 3] };
        const stored = { baseVersion: 2, state: digest(big), deltas: [3] };
        // A pooled store opens its second connection now, so that the reads below run between
        // the write's chunks instead of waiting on a connect while the write finishes.
        await Promise.all([baseOf(store, 3), baseOf(store, 3)]);
        let done = false;
        const put = store.putJsonState({ subjectId: "s1", streamId: "js", streamUid: "00000000-0000-4000-8000-000000000002", version: 2, state: big });
        void put.finally(() => (done = true));
        // Reads while the chunks are written see the state before or the whole new one. Which
        // of the two the first read sees is the scheduler's choice: no read may see a mix.
        while (!done) {
          expect([initial, stored]).toContainEqual(await baseOf(store, 3));
          await new Promise((resolve) => setImmediate(resolve));
        }
        expect(await put).toBe(true);
        expect(await baseOf(store, 3)).toEqual(stored);
        expect(await baseOf(store, 1)).toEqual({ baseVersion: 0, state: digest(Buffer.from("{}")), deltas: [1] });
        // Idempotent: the state stored first stays.
        const other = stateOf(100, 2);
        expect(await store.putJsonState({ subjectId: "s1", streamId: "js", streamUid: "00000000-0000-4000-8000-000000000002", version: 2, state: other })).toBe(true);
        expect(await baseOf(store, 2)).toEqual({ ...stored, deltas: [] });
        // Another stream under the id, or a version past the head, stores nothing.
        expect(await store.putJsonState({ subjectId: "s1", streamId: "js", streamUid: "00000000-0000-4000-8000-000000000009", version: 3, state: other })).toBe(false);
        expect(await store.putJsonState({ subjectId: "s1", streamId: "js", streamUid: "00000000-0000-4000-8000-000000000002", version: 4, state: other })).toBe(false);
        expect(await baseOf(store, 3)).toEqual(stored);
      }));

    it("compacts a JSON stream onto a state of several chunks and reads nothing below the new horizon", () =>
      withStore(async (store) => {
        await jsonStream(store, 5);
        await store.putJsonState({ subjectId: "s1", streamId: "js", streamUid: "00000000-0000-4000-8000-000000000002", version: 2, state: stateOf(1_500_000, 3) });
        const atHorizon = stateOf(3 * 1024 * 1024 + 5, 4);
        const compacted = await store.compactStream({ subjectId: "s1", streamId: "js", horizonVersion: 4, stateAtHorizon: atHorizon, now });
        expect(compacted).toMatchObject({ kind: "compacted", stream: { horizonVersion: 4 } });
        expect(await baseOf(store, 5)).toEqual({ baseVersion: 4, state: digest(atHorizon), deltas: [5] });
        expect(await baseOf(store, 3)).toEqual({ kind: "below-horizon", horizonVersion: 4 });
        expect((await store.listDeltas("s1", "js", 0, 100)).map((d) => d.version)).toEqual([5]);
        // A compaction that changes nothing keeps the stored state.
        expect(await store.compactStream({ subjectId: "s1", streamId: "js", horizonVersion: 4, stateAtHorizon: stateOf(10, 5), now })).toMatchObject({ kind: "unchanged" });
        expect(await baseOf(store, 4)).toEqual({ baseVersion: 4, state: digest(atHorizon), deltas: [] });
        expect(await store.compactStream({ subjectId: "s1", streamId: "js", horizonVersion: 9, stateAtHorizon: stateOf(10, 5), now })).toMatchObject({ kind: "ahead-of-head" });
        await append(store, "a", 6, { streamId: "js", streamUid: "00000000-0000-4000-8000-000000000002" });
        expect(await baseOf(store, 6)).toEqual({ baseVersion: 4, state: digest(atHorizon), deltas: [5, 6] });
        // Erasure takes the chunks with the stream.
        expect(await store.eraseSubject("s1")).toBe(true);
        expect(await store.loadStateBase("s1", "js", 4)).toEqual({ kind: "stream-not-found" });
      }));

    it("keeps a large delta payload known before the append in chunks, and reads it back whole wherever deltas are read", () =>
      withStore(async (store) => {
        await jsonStream(store, 2);
        const js = { streamId: "js", streamUid: "00000000-0000-4000-8000-000000000002" };
        const big = stateOf(2 * 1024 * 1024 + 512 * 1024 + 3, 7);
        const unexpected = stateOf(1024 * 1024 + 9, 8);
        const small = stateOf(10, 9);
        const batch = (payloads: readonly Uint8Array[]) => ({ stream }: { stream: { headVersion: number; headHash: Uint8Array } }): BuiltBatch => ({
          deltas: payloads.map((payload, i) => ({ payload, prevHash: i === 0 ? stream.headHash : hash(stream.headVersion + i), hash: hash(stream.headVersion + 1 + i) })),
        });
        const digests = (deltas: readonly { payload: Uint8Array }[]) => deltas.map((d) => digest(d.payload));
        // Refused or aimed at another stream: nothing is kept, the stream is as it was.
        const refused = await append(store, "a", 3, { ...js, expectedPayloads: [big], build: () => { throw new Error("no"); } });
        expect(refused.kind).toBe("rejected");
        expect(await append(store, "a", 3, { ...js, streamUid: "00000000-0000-4000-8000-000000000009", expectedPayloads: [big] })).toEqual({ kind: "stream-not-found" });
        expect((await store.getStream("s1", "js"))?.headVersion).toBe(2);

        const seen: StoreNotification[] = [];
        store.onNotification((n) => seen.push(n));
        // A payload expected but small, one expected and large, one large that was not expected.
        const committed = await append(store, "a", 3, { ...js, expectedPayloads: [big, small, big], build: batch([big, small, unexpected]) });
        expect(committed).toMatchObject({ kind: "committed", outcome: { headVersion: 5 } });
        const want = [digest(big), digest(small), digest(unexpected)];
        if (committed.kind === "committed") expect(digests(committed.deltas)).toEqual(want);
        expect(digests(await store.listDeltas("s1", "js", 2, 10))).toEqual(want);
        expect(digests(await store.listDeltas("s1", "js", 3, 1))).toEqual([digest(small)]);
        const base = await store.loadStateBase("s1", "js", 5);
        expect("deltas" in base && digests(base.deltas)).toEqual([digest(Buffer.from([1])), digest(Buffer.from([2])), ...want]);
        const event = (await store.readEvents("s1", 0, 100)).find((e) => e.body.kind === "deltas-appended" && e.body.firstVersion === 3);
        expect(event?.body.kind === "deltas-appended" && digests(event.body.deltas)).toEqual(want);
        expect(seen.some((n) => n.kind === "events" && n.events.some((e) => e.body.kind === "deltas-appended" && e.body.firstVersion === 3))).toBe(true);
        // What separates the head from the newest stored state counts the chunked payload too.
        expect(await store.putJsonState({ subjectId: "s1", ...js, version: 2, state: stateOf(10, 1) })).toBe(true);
        await append(store, "a", 4, { ...js, expectedPayloads: [big], build: batch([big]) });
        const head = await new Promise<number>((resolve, reject) => {
          void store
            .appendBatch({
              subjectId: "s1",
              ...js,
              deviceId: "a",
              clientSequence: 5,
              fingerprint: new Uint8Array([5]),
              expectedVersion: undefined,
              now,
              build: (at) => {
                resolve(at.stateLag.bytes);
                throw new Error("only looking");
              },
            })
            .catch(reject);
        });
        expect(head).toBe(2 * big.length + small.length + unexpected.length);

        // Compacted past it: gone with the deltas below the horizon; the one above stays whole.
        expect(await store.compactStream({ subjectId: "s1", streamId: "js", horizonVersion: 5, stateAtHorizon: stateOf(10, 2), now })).toMatchObject({ kind: "compacted" });
        expect(digests(await store.listDeltas("s1", "js", 0, 10))).toEqual([digest(big)]);
        // Deleted with its stream: a stream created again under the id has none of it.
        expect(await store.deleteStream("s1", "js", now)).toBeDefined();
        await jsonStream(store, 1);
        expect((await store.listDeltas("s1", "js", 0, 10)).map((d) => d.payload.length)).toEqual([1]);
      }));

    it("erases a subject with everything it owns", () =>
      withStore(async (store) => {
        const seen: StoreNotification[] = [];
        store.onNotification((n) => seen.push(n));
        await append(store, "a", 1);
        await store.registerDevice({ subjectId: "s1", deviceId: "a", platformId: "p", displayName: undefined, now });
        expect(await store.eraseSubject("s1")).toBe(true);
        expect(seen.at(-1)).toEqual({ kind: "subject-erased", subjectId: "s1" });
        expect(await store.getSubject("s1")).toBeUndefined();
        expect(await store.getStream("s1", "st")).toBeUndefined();
        expect(await store.findAccountLink("p", "acct")).toBeUndefined();
        expect(await store.getDevice("s1", "a")).toBeUndefined();
        expect(await store.getEventBounds("s1")).toEqual({ horizon: 0, head: 0 });
        expect(await store.eraseSubject("s1")).toBe(false);
      }));
  });

  describe(`Store contract (portability): ${name}`, () => {
    const uid = (n: number) => `00000000-0000-4000-8000-0000000000${String(n).padStart(2, "0")}`;
    const imported = (version: number, batch: { first: number; size: number; device?: string; seq?: number }) => ({
      version,
      payload: new Uint8Array([version]),
      prevHash: hash(version === 1 ? 50 : 50 + version - 1),
      hash: hash(50 + version),
      deviceId: batch.device,
      clientSequence: batch.seq ?? 0,
      batchFirstVersion: batch.first,
      batchSize: batch.size,
      committedAt: now,
    });
    const importInput = (id: string, n: number) => ({
      subjectId: "s1",
      id,
      uid: uid(n),
      type: "org.example.t",
      encoding: Encoding.Opaque,
      conflictPolicy: Policy.AllowBlindAppend,
      ownerPlatformId: "p",
      genesisHash: hash(50),
      horizonVersion: 0,
      horizonHash: hash(50),
      base: { kind: "none" as const },
      createdAt: now,
      maxStreamsPerSubject: 10,
      now,
    });

    it("imports a stream once, and tells a repeat from a taken id or uid", () =>
      withStore(async (store) => {
        expect((await store.importStream(importInput("moved", 10))).kind).toBe("created");
        expect((await store.importStream(importInput("moved", 10))).kind).toBe("exists");
        expect((await store.importStream(importInput("moved", 11))).kind).toBe("id-taken");
        expect((await store.importStream(importInput("other", 10))).kind).toBe("uid-taken");
        const ids = (await store.listStreamsByUid("s1", { after: undefined, limit: 10 })).items.map((s) => s.uid);
        expect(ids).toEqual([uid(1), uid(10)]);
      }));

    it("appends imported deltas as they were, skips what it holds, and refuses gaps and other histories", () =>
      withStore(async (store) => {
        await store.importStream(importInput("moved", 10));
        const input = (deltas: ReturnType<typeof imported>[]) => ({ subjectId: "s1", streamId: "moved", streamUid: uid(10), deltas, stateAfter: undefined, now });
        const first = await store.importDeltas(input([imported(1, { first: 1, size: 2, device: "d", seq: 1 }), imported(2, { first: 1, size: 2, device: "d", seq: 1 })]));
        expect(first.kind === "imported" && [first.imported, first.skipped, first.stream.headVersion]).toEqual([2, 0, 2]);
        const again = await store.importDeltas(input([imported(2, { first: 1, size: 2, device: "d", seq: 1 }), imported(3, { first: 3, size: 1 })]));
        expect(again.kind === "imported" && [again.imported, again.skipped]).toEqual([1, 1]);
        expect(await store.importDeltas(input([imported(5, { first: 5, size: 1 })]))).toEqual({ kind: "gap", headVersion: 3 });
        const forked = { ...imported(3, { first: 3, size: 1 }), hash: hash(99) };
        expect(await store.importDeltas(input([forked]))).toEqual({ kind: "chain-mismatch", version: 3 });
        // PORT-027: the device's imported sequence replays whatever the request, and the next one continues after it.
        const replay = await store.appendBatch({
          subjectId: "s1",
          streamId: "moved",
          streamUid: uid(10),
          deviceId: "d",
          clientSequence: 1,
          fingerprint: new Uint8Array([42]),
          expectedVersion: undefined,
          now,
          build: () => {
            throw new Error("a replay builds nothing");
          },
        });
        expect(replay.kind === "replayed" && replay.outcome.receipts.map((r) => r.version)).toEqual([1, 2]);
      }));

    it("keeps one running migration per subject and ends interrupted ones", () =>
      withStore(async (store) => {
        const migration = { subjectId: "s1", id: "m1", source: "h:1", sourceSubject: "", state: "copying" as const, recordsCopied: 0, recordsTotal: 0, bytesCopied: 0, lagDeltas: 0, switchPauseMs: undefined, error: "", createdAt: now, endedAt: undefined };
        expect(await store.putMigration(migration)).toBe("stored");
        expect(await store.putMigration({ ...migration, id: "m2" })).toBe("conflict");
        expect(await store.putMigration({ ...migration, recordsCopied: 5 })).toBe("stored");
        expect((await store.findActiveMigration("s1"))?.recordsCopied).toBe(5);
        expect(await store.failInterruptedMigrations("restarted", now)).toBe(1);
        expect(await store.findActiveMigration("s1")).toBeUndefined();
        expect(await store.getMigration("s1", "m1")).toMatchObject({ state: "failed", error: "restarted" });
      }));

    it("keeps a migration's lease: a live runner is left alone, an ended or expired one is not", () =>
      withStore(async (store) => {
        const later = (ms: number) => new Date(now.getTime() + ms);
        const migration = { subjectId: "s1", id: "m1", source: "h:1", sourceSubject: "", state: "copying" as const, recordsCopied: 0, recordsTotal: 0, bytesCopied: 0, lagDeltas: 0, switchPauseMs: undefined, error: "", createdAt: now, endedAt: undefined };
        expect(await store.putMigration(migration, { lease: { owner: "a", until: later(15_000) } })).toBe("stored");
        // Another server starting, or maintaining, leaves a migration whose runner is live.
        expect(await store.failInterruptedMigrations("interrupted", later(1_000))).toBe(0);
        expect(await store.renewMigrationLease("s1", "m1", "b", later(16_000), later(1_000))).toBe("lost");
        expect(await store.renewMigrationLease("s1", "m1", "a", later(20_000), later(5_000))).toBe("renewed");
        // Progress does not clear the lease.
        expect(await store.putMigration({ ...migration, recordsCopied: 3 })).toBe("stored");
        expect(await store.failInterruptedMigrations("interrupted", later(19_000))).toBe(0);
        // Once the runner stopped renewing, another server may take it over, or end it.
        expect(await store.renewMigrationLease("s1", "m1", "b", later(40_000), later(20_000))).toBe("renewed");
        expect(await store.failInterruptedMigrations("interrupted", later(40_000))).toBe(1);
        expect(await store.getMigration("s1", "m1")).toMatchObject({ state: "failed", error: "interrupted", recordsCopied: 3 });
        // An ended migration is never written over, and its lease is not renewed.
        expect(await store.putMigration({ ...migration, state: "switching" })).toBe("stale");
        expect(await store.renewMigrationLease("s1", "m1", "b", later(60_000), later(41_000))).toBe("lost");
        // ifState: a cancel decided on a copying migration does not end one that began its switch.
        const m2 = { ...migration, id: "m2", state: "switching" as const };
        expect(await store.putMigration(m2)).toBe("stored");
        expect(await store.putMigration({ ...m2, state: "cancelled", endedAt: now }, { ifState: "copying" })).toBe("stale");
        expect((await store.getMigration("s1", "m2"))?.state).toBe("switching");
        // Once its runner recorded that it sends the commit, a cancel through another server
        // (a record without `committing`) is refused; the runner's own records still land.
        expect(await store.putMigration({ ...m2, committing: true })).toBe("stored");
        expect(await store.putMigration({ ...m2, state: "cancelled", committing: false, endedAt: now }, { ifState: "switching" })).toBe("stale");
        expect(await store.putMigration({ ...m2, state: "cancelled", endedAt: now })).toBe("stale");
        expect(await store.getMigration("s1", "m2")).toMatchObject({ state: "switching", committing: true });
        expect(await store.putMigration({ ...m2, committing: true, state: "completed", endedAt: now })).toBe("stored");
        expect((await store.getMigration("s1", "m2"))?.state).toBe("completed");
        // Before that record, a cancel of a switching migration lands.
        const m3 = { ...migration, id: "m3", state: "switching" as const };
        expect(await store.putMigration(m3)).toBe("stored");
        expect(await store.putMigration({ ...m3, state: "cancelled", committing: false, endedAt: now }, { ifState: "switching" })).toBe("stored");
        expect(await store.putMigration({ ...m3, committing: true })).toBe("stale");
      }));

    it("holds a subject's writes for one holder until it releases, records the move or runs out", () =>
      withStore(async (store) => {
        const soon = () => new Date(Date.now() + 10_000);
        // A refused append may come back as a rejection or as `rejected` (one of a group).
        const refusal = (result: Promise<AppendResult>) =>
          result.then(
            (r) => (r.kind === "rejected" ? r.error : r),
            (error: unknown) => error,
          );
        expect(await store.holdSubject("s1", "switch-1", soon(), new Date())).toBe("held");
        expect(await store.holdSubject("s1", "switch-2", soon(), new Date())).toBe("conflict");
        expect(await store.getSubjectHold("s1", new Date())).toMatchObject({ holder: "switch-1" });
        expect(await refusal(append(store, "d", 1))).toBeInstanceOf(SubjectHeldError);
        // A release by someone else changes nothing; the holder's own ends it.
        await store.releaseSubjectHold("s1", "switch-2");
        expect(await store.getSubjectHold("s1", new Date())).toBeDefined();
        await store.releaseSubjectHold("s1", "switch-1");
        expect(await store.getSubjectHold("s1", new Date())).toBeUndefined();
        expect((await append(store, "d", 1)).kind).toBe("committed");

        // A hold that ran out holds nothing, and cannot record a move any more.
        expect(await store.holdSubject("s1", "switch-3", new Date(Date.now() + 50), new Date())).toBe("held");
        await new Promise((resolve) => setTimeout(resolve, 80));
        expect(await store.getSubjectHold("s1", new Date())).toBeUndefined();
        expect((await append(store, "d", 2)).kind).toBe("committed");
        const move = { subjectId: "s1", target: "h:2", targetSubject: "subjects/t", movedAt: now };
        expect(await store.recordHeldSubjectMove(move, "switch-3")).toBe("lost");
        expect(await store.getSubjectMove("s1")).toBeUndefined();

        // A live hold records the move and passes to it for good: a write that passed a
        // server's door before the move (on another replica) reaches its transaction after
        // it, and must be refused there, not acknowledged on a subject already handed over.
        expect(await store.holdSubject("s1", "switch-4", soon(), new Date())).toBe("held");
        expect(await store.recordHeldSubjectMove(move, "switch-4")).toBe("recorded");
        expect(await store.getSubjectMove("s1")).toMatchObject({ target: "h:2" });
        expect(await refusal(append(store, "d", 3))).toBeInstanceOf(SubjectHeldError);
        await store.releaseSubjectHold("s1", "switch-4");
        expect(await refusal(append(store, "d", 3))).toBeInstanceOf(SubjectHeldError);
        expect(await store.holdSubject("s1", "switch-5", soon(), new Date())).toBe("conflict");
        // Erasing the moved subject still goes.
        expect(await store.eraseMovedSubjects(new Date(Date.now() + 1))).toBe(1);
        expect(await store.getSubject("s1")).toBeUndefined();
      }));

    it("counts failures in fixed windows per key", () =>
      withStore(async (store) => {
        const at = (ms: number) => new Date(now.getTime() + ms);
        await store.countFailure(["a", "b"], 1000, at(0));
        await store.countFailure(["a"], 1000, at(500));
        expect(await store.getFailureWindows(["a", "b", "c"], 1000, at(900))).toEqual([
          { opensAt: at(0), failures: 2 },
          { opensAt: at(0), failures: 1 },
          undefined,
        ]);
        // A window that ended is gone; the next failure opens a new one.
        expect(await store.getFailureWindows(["a"], 1000, at(1000))).toEqual([undefined]);
        await store.countFailure(["a"], 1000, at(1200));
        expect(await store.getFailureWindows(["a"], 1000, at(1300))).toEqual([{ opensAt: at(1200), failures: 1 }]);
      }));

    it("keeps a provider's key set and lets one fetch through per interval", () =>
      withStore(async (store) => {
        const at = (ms: number) => new Date(now.getTime() + ms);
        expect(await store.getJwksCopy("p")).toBeUndefined();
        expect(await store.claimJwksFetch("p", 1000, at(0))).toBe(true);
        expect(await store.claimJwksFetch("p", 1000, at(999))).toBe(false);
        await store.putJwksCopy("p", { jwks: '{"keys":[1]}', fetchedAt: at(10) });
        // An older copy fetched meanwhile does not replace a newer one.
        await store.putJwksCopy("p", { jwks: '{"keys":[0]}', fetchedAt: at(5) });
        expect(await store.getJwksCopy("p")).toEqual({ jwks: '{"keys":[1]}', fetchedAt: at(10) });
        expect(await store.claimJwksFetch("p", 1000, at(1000))).toBe(true);
      }));

    it("records a move and tells its listeners", () =>
      withStore(async (store) => {
        const seen: StoreNotification[] = [];
        const stop = store.onNotification((n) => seen.push(n));
        await store.recordSubjectMove({ subjectId: "s1", target: "h:2", targetSubject: "subjects/t", movedAt: now });
        stop();
        expect(await store.getSubjectMove("s1")).toMatchObject({ target: "h:2", targetSubject: "subjects/t" });
        expect(seen).toContainEqual({ kind: "subject-moved", subjectId: "s1", target: "h:2", targetSubject: "subjects/t" });
        expect(await store.eraseMovedSubjects(new Date(now.getTime() + 1))).toBe(1);
        expect(await store.getSubject("s1")).toBeUndefined();
      }));
  });
}
