/**
 * The work of a JSON Patch that its own bytes do not show (limits.md, "JSON state"): moves to
 * deeper places, whose values' nesting must be read (LIMIT-023), and insertions and removals
 * by index, which shift the items after them (LIMIT-024). Each bound is probed at its exact
 * value and one past it, and the operations that cost nothing are shown to count nothing.
 */
import { defineCase } from "../harness/define-case.js";
import { checkEqual, expectError, Status } from "../harness/expect.js";
import { append, checkJsonState, createStream, downloadSnapshot, ENCODING } from "../harness/streams.js";

type Operation = Record<string, unknown>;

/** Bytes of the deltas as the suite sends them (JSON text of the operation arrays). */
export const patchBytes = (patches: readonly unknown[]): number => patches.reduce<number>((sum, p) => sum + Buffer.byteLength(JSON.stringify(p)), 0);

/**
 * How many zeros `/l` holds for the shift cases: as many as one delta can add, within the state
 * bound, so that each operation at its front shifts as much as it can.
 */
export function shiftedArrayLength(limits: { maxDeltaBytes: number; maxSnapshotBytes: number | bigint }): number {
  return Math.min(Math.floor((limits.maxDeltaBytes - 64) / 2), Math.floor((Number(limits.maxSnapshotBytes) - 16) / 2));
}

/**
 * JSON Patch deltas that together shift exactly `total` items of `/l` (an array of `items`
 * zeros), leaving it as it was: removals at index 0 each followed by an addition of 0 there
 * (2 × (items - 1) shifts a pair), then one removal and one addition nearer the end for the
 * rest. Each delta's operations stay within `maxDelta` bytes.
 */
export function shiftingDeltas(items: number, total: number, maxDelta: number): Operation[][] {
  const perPair = 2 * (items - 1);
  const operations: Operation[] = [];
  for (let pairs = Math.floor(total / perPair); pairs > 0; pairs--) {
    operations.push({ op: "remove", path: "/l/0" }, { op: "add", path: "/l/0", value: 0 });
  }
  const rest = total % perPair;
  const first = Math.min(rest, items - 1);
  // Removing index i of n items shifts n - i - 1; adding at i of n shifts n - i.
  operations.push({ op: "remove", path: `/l/${items - 1 - first}` }, { op: "add", path: `/l/${items - 1 - (rest - first)}`, value: 0 });
  const deltas: Operation[][] = [[]];
  let bytes = 2;
  for (const operation of operations) {
    const size = JSON.stringify(operation).length + 1;
    if (bytes + size > maxDelta - 16) {
      deltas.push([]);
      bytes = 2;
    }
    deltas.at(-1)!.push(operation);
    bytes += size;
  }
  return deltas;
}

export const PATCH_WORK_CASES = [
  defineCase({
    id: "append.json-deeper-moves-bound",
    requirements: ["LIMIT-023", "LIMIT-002"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session, { encoding: ENCODING.jsonPatch });
      const max = ctx.limits.maxDeltaBytes;
      // Two strings whose canonical sizes add up to exactly max_delta_bytes, and a 0 (1 byte).
      const a = Math.floor(max / 2);
      const b = max - a;
      await append(session, stream.name, [[{ op: "add", path: "/s", value: "y".repeat(a - 2) }]], { clientSequence: 1 });
      await append(session, stream.name, [[{ op: "add", path: "/t", value: "z".repeat(b - 2) }]], { clientSequence: 2 });
      await append(session, stream.name, [[{ op: "add", path: "/d", value: {} }, { op: "add", path: "/u", value: 0 }]], { clientSequence: 3 });
      // One level deeper, and back up (a move to a shallower place counts nothing).
      const down = (path: string): Operation => ({ op: "move", from: path, path: `/d${path}` });
      const up = (path: string): Operation => ({ op: "move", from: `/d${path}`, path });
      await expectError(
        append(session, stream.name, [[down("/s"), up("/s")], [down("/t"), up("/t"), down("/u"), up("/u")]], { clientSequence: 4 }),
        { code: Status.RESOURCE_EXHAUSTED, reason: "DELTA_TOO_LARGE", metadata: { limit: String(max), index: "1" } },
        "an append whose moves to deeper places carry one byte more than max_delta_bytes",
      );
      // Exactly max_delta_bytes moved deeper; besides, moves beside themselves (no deeper) of
      // /s, four times its size, and a copy of /s, which LIMIT-021 counts apart.
      const sideways = [0, 1, 2, 3].flatMap(() => [{ op: "move", from: "/s", path: "/w" }, { op: "move", from: "/w", path: "/s" }]);
      const ok = await append(
        session,
        stream.name,
        [[down("/s"), up("/s"), ...sideways], [down("/t"), up("/t")], [{ op: "copy", from: "/s", path: "/c" }]],
        { clientSequence: 4 },
      );
      checkEqual(ok.headVersion, 6n, "head after moves to deeper places of exactly max_delta_bytes, moves no deeper and a copy");
      const snapshot = await downloadSnapshot(session, stream.name);
      checkJsonState(snapshot, { s: "y".repeat(a - 2), t: "z".repeat(b - 2), d: {}, u: 0, c: "y".repeat(a - 2) }, "state after the moves");
    },
  }),
  defineCase({
    id: "append.json-array-shifts-bound",
    requirements: ["LIMIT-024", "LIMIT-002"],
    profile: "core",
    async run(ctx) {
      const bound = Number(ctx.limits.maxSnapshotBytes);
      const { maxDeltaBytes, maxBatchBytes, maxBatchDeltas } = ctx.limits;
      const items = shiftedArrayLength(ctx.limits);
      const exact = shiftingDeltas(items, bound, maxDeltaBytes);
      // Adding at the last index shifts that one item; "-", the last item and replace shift none.
      const extra = [{ op: "add", path: `/l/${items - 1}`, value: 0 }];
      const free = [{ op: "add", path: "/l/-", value: 0 }, { op: "remove", path: `/l/${items}` }, { op: "replace", path: "/l/0", value: 0 }];
      if (patchBytes([...exact, extra, free]) > maxBatchBytes || exact.length + 1 > maxBatchDeltas) {
        ctx.skip(`shifting ${bound} items (max_snapshot_bytes) with operations on an array of ${items} takes more than one append of max_batch_bytes ${maxBatchBytes} and max_batch_deltas ${maxBatchDeltas}`);
      }
      const session = await ctx.session();
      const stream = await createStream(ctx, session, { encoding: ENCODING.jsonPatch });
      const zeros = Array.from({ length: items }, () => 0);
      await append(session, stream.name, [[{ op: "add", path: "/l", value: zeros }]], { clientSequence: 1 });
      await expectError(
        append(session, stream.name, [...exact, extra], { clientSequence: 2 }),
        { code: Status.RESOURCE_EXHAUSTED, reason: "DELTA_TOO_LARGE", metadata: { limit: String(bound), index: String(exact.length) } },
        `an append whose operations shift max_snapshot_bytes + 1 items of an array of ${items}`,
      );
      const ok = await append(session, stream.name, [...exact, free], { clientSequence: 2 });
      checkEqual(ok.headVersion, BigInt(2 + exact.length), `head after operations that shift exactly max_snapshot_bytes (${bound}) items, and some that shift none`);
      checkJsonState(await downloadSnapshot(session, stream.name), { l: zeros }, "state after the shifting operations");
    },
  }),
];
