/**
 * LIMIT-023 and LIMIT-024: the work of a JSON Patch that its own bytes do not show. Issue 10
 * defect 1, its last two shapes (found 2026-12-03): a patch of many small operations that
 * each shift a long array (30,000 removals at index 0 of a 1,000,000-item array held the loop
 * about 15 s) or each move a large value to a deeper place, whose nesting is then walked
 * (1,000 such moves of a 16 MiB object, 3.9 s). Both are now refused within their bounds, with
 * the loop free for other calls meanwhile.
 */
import { afterEach, describe, expect, it } from "vitest";
import { failure, startTestServer, type TestServer } from "../../src/testing/harness.js";
import { docStream, whileOthersCall } from "./large-state.js";

// Large enough to build the long array in one append; the shifts' bound is max_snapshot_bytes
// (64 MiB by default) whatever max_delta_bytes is.
const MAX_DELTA = 8 * 1024 * 1024;

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function setUp(limits: { maxDeltaBytes?: number; maxBatchBytes?: number } = { maxDeltaBytes: MAX_DELTA, maxBatchBytes: MAX_DELTA }) {
  server = await startTestServer({ maintenanceIntervalMs: 0, limits });
  const { ana, stream, append } = await docStream(server);
  const head = async () => (await ana.clients.stream.getStream({ name: stream.name })).stream?.headVersion;
  const info = await server.anonymous.serverInfo.getServerInfo({});
  return { server, append, head, maxDeltaBytes: Number(info.limits!.maxDeltaBytes) };
}

describe("LIMIT-023, LIMIT-024: the work one JSON Patch asks for is bounded", () => {
  it("refuses a patch of many removals at the front of a long array after the shifts it is allowed", { timeout: 60_000 }, async () => {
    const { server, append, head } = await setUp();
    await append([[{ op: "add", path: "/l", value: Array.from({ length: 1_000_000 }, () => ({})) }]]);
    // 30,000 removals (about 0.9 MB): unbounded, 3 × 10^10 shifted items, tens of seconds.
    const removals = Array.from({ length: 30_000 }, () => ({ op: "remove", path: "/l/0" }));
    let outcome: unknown;
    const started = performance.now();
    const { maxDelayMs, slowestCallMs } = await whileOthersCall(server, async () => {
      outcome = await failure(append([[{ op: "test", path: "/l/0", value: {} }], removals]));
    });
    const elapsed = performance.now() - started;
    expect(outcome).toMatchObject({ code: "RESOURCE_EXHAUSTED", reason: "DELTA_TOO_LARGE", metadata: { limit: String(64 * 1024 * 1024), index: "1" } });
    // 67 removals fit in 64 Mi shifted items; they and their undo take about 0.15 s alone.
    // The bounds leave room for a loaded CI machine; unbounded, the call took 40 s.
    console.log(`front removals refused in ${elapsed.toFixed(0)} ms; longest loop delay ${maxDelayMs.toFixed(0)} ms, slowest other call ${slowestCallMs.toFixed(0)} ms`);
    expect(elapsed).toBeLessThan(5_000);
    expect(maxDelayMs).toBeLessThan(1_500);
    expect(slowestCallMs).toBeLessThan(2_000);
    expect(await head()).toBe(1n);
    // Removals from the end shift nothing, whatever their number.
    const fromTheEnd = Array.from({ length: 30_000 }, (_, i) => ({ op: "remove", path: `/l/${999_999 - i}` }));
    expect((await append([fromTheEnd])).headVersion).toBe(2n);
  });

  it("refuses a patch that moves a large value deeper and back again past max_delta_bytes", { timeout: 60_000 }, async () => {
    // Default limits: moves to deeper places carry at most max_delta_bytes (256 KiB) per append.
    const { server, append, head, maxDeltaBytes } = await setUp({});
    // /a: 16 objects of 8,000 members each, added one per append (about 2.4 MB, 256,000 values).
    for (let p = 0; p < 16; p++) {
      const part = Object.fromEntries(Array.from({ length: 8_000 }, (_, i) => [`k${String(i).padStart(4, "0")}`, [i]]));
      await append([[{ op: "add", path: p === 0 ? "/a" : `/a/p${p}`, value: p === 0 ? { p0: part } : part }]]);
    }
    await append([[{ op: "add", path: "/c", value: {} }, { op: "add", path: "/s", value: { t: "x".repeat(100_000) } }]]);
    const down = (from: string) => ({ op: "move", from, path: `/c${from}` });
    const up = (from: string) => ({ op: "move", from: `/c${from}`, path: from });
    // Unbounded, each move down walks all of /a: 1,000 of them, minutes.
    const pairs = Array.from({ length: 1_000 }, () => [down("/a"), up("/a")]).flat();
    let outcome: unknown;
    const { maxDelayMs } = await whileOthersCall(server, async () => {
      outcome = await failure(append([pairs]));
    });
    expect(outcome).toMatchObject({ code: "RESOURCE_EXHAUSTED", reason: "DELTA_TOO_LARGE", metadata: { limit: String(maxDeltaBytes), index: "0" } });
    console.log(`deeper moves refused; longest loop delay ${maxDelayMs.toFixed(0)} ms`);
    expect(maxDelayMs).toBeLessThan(1_500);
    expect(await head()).toBe(17n);
    // Two moves deeper of /s (100 KB each) fit in 256 KiB, a third does not; moves to places no
    // deeper are free, even of /a.
    expect(await failure(append([[down("/s"), up("/s"), down("/s")], [up("/s"), down("/s")]]))).toMatchObject({ reason: "DELTA_TOO_LARGE", metadata: { index: "1" } });
    const sideways = Array.from({ length: 1_000 }, () => [{ op: "move", from: "/a", path: "/b" }, { op: "move", from: "/b", path: "/a" }]).flat();
    expect((await append([[down("/s"), up("/s"), down("/s")], sideways])).headVersion).toBe(19n);
  });
});
