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
export const patchBytes = (patches: readonly unknown[]): number => patches.reduce<number>((sum, p) => sum + Buffer.byteLength(JSON.stringify(p)) + 8, 0);

type Limits = { maxDeltaBytes: number; maxBatchBytes: number; maxBatchDeltas: number; maxSnapshotBytes: number | bigint };

/** Operations in deltas of at most `maxDelta` bytes each. */
function inDeltas(operations: readonly Operation[], maxDelta: number): Operation[][] {
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

/** Deltas in appends within max_batch_bytes and max_batch_deltas. */
function inAppends(deltas: readonly Operation[][], limits: Limits): Operation[][][] {
  const appends: Operation[][][] = [[]];
  for (const delta of deltas) {
    const last = appends.at(-1)!;
    if (last.length > 0 && (last.length + 1 > limits.maxBatchDeltas || patchBytes([...last, delta]) > limits.maxBatchBytes)) appends.push([]);
    appends.at(-1)!.push(delta);
  }
  return appends.filter((deltas) => deltas.length > 0);
}

/** How to shift exactly `max_snapshot_bytes` items of `/l`, an array of `items` zeros, in one append. */
export interface ShiftPlan {
  readonly items: number;
  /** Appends that build `/l`: one `add` of as many zeros as a delta holds, then `add`s at `-`. */
  readonly build: Operation[][][];
  /** The deltas of one append that shift exactly the bound, leaving `/l` as it was. */
  readonly exact: Operation[][];
}

/**
 * A plan for the shift cases, or why none fits these limits. Each removal at index 0 and
 * addition of 0 there shift 2 × (items - 1) items, a last removal and addition nearer the
 * end the rest; `/l` is long enough that those operations fit in one append (LIMIT-024 counts
 * per append), and its zeros take at most the state bound.
 */
export function planShifts(limits: Limits): ShiftPlan | string {
  const bound = Number(limits.maxSnapshotBytes);
  const inOneDelta = Math.floor((limits.maxDeltaBytes - 64) / 2);
  // About 36 bytes per operation, two per pair: enough items that the pairs fit in 80 % of an append.
  const needed = Math.ceil((bound * 36) / (0.8 * Math.min(limits.maxBatchBytes, limits.maxBatchDeltas * (limits.maxDeltaBytes - 16)))) + 2;
  const items = Math.max(Math.min(inOneDelta, Math.floor((bound - 16) / 2)), needed);
  if (items < 2 || items > (bound - 16) / 2) return `an array whose front operations shift max_snapshot_bytes (${bound}) items within one append of max_batch_bytes ${limits.maxBatchBytes} would not fit in the state`;
  const first = Math.min(items, inOneDelta);
  const more = inDeltas(Array.from({ length: items - first }, () => ({ op: "add", path: "/l/-", value: 0 })), limits.maxDeltaBytes);
  const build = [[[{ op: "add", path: "/l", value: Array.from({ length: first }, () => 0) }]], ...inAppends(more.filter((delta) => delta.length > 0), limits)];
  if (build.length > 2_000) return `building an array of ${items} items takes ${build.length} appends`;
  const perPair = 2 * (items - 1);
  const operations: Operation[] = [];
  for (let pairs = Math.floor(bound / perPair); pairs > 0; pairs--) {
    operations.push({ op: "remove", path: "/l/0" }, { op: "add", path: "/l/0", value: 0 });
  }
  const rest = bound % perPair;
  const head = Math.min(rest, items - 1);
  // Removing index i of n items shifts n - i - 1; adding at i of n shifts n - i.
  operations.push({ op: "remove", path: `/l/${items - 1 - head}` }, { op: "add", path: `/l/${items - 1 - (rest - head)}`, value: 0 });
  const exact = inDeltas(operations, limits.maxDeltaBytes);
  if (inAppends(exact, limits).length > 1 || exact.length + 1 > limits.maxBatchDeltas) return `shifting ${bound} items with operations on an array of ${items} takes more than one append`;
  return { items, build, exact };
}

export const PATCH_WORK_CASES = [
  defineCase({
    id: "append.json-deeper-moves-bound",
    requirements: ["LIMIT-023", "LIMIT-002"],
    profile: "core",
    async run(ctx) {
      const max = ctx.limits.maxDeltaBytes;
      if (Number(ctx.limits.maxSnapshotBytes) < 2 * max) ctx.skip(`max_snapshot_bytes (${ctx.limits.maxSnapshotBytes}) is under 2 × max_delta_bytes: the state this case moves values in would not fit`);
      const session = await ctx.session();
      const stream = await createStream(ctx, session, { encoding: ENCODING.jsonPatch });
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
      const plan = planShifts(ctx.limits);
      if (typeof plan === "string") return ctx.skip(plan);
      const { items, build, exact } = plan;
      // Adding at the last index shifts that one item; "-", the last item and replace shift none.
      const extra = [{ op: "add", path: `/l/${items - 1}`, value: 0 }];
      const free = [{ op: "add", path: "/l/-", value: 0 }, { op: "remove", path: `/l/${items}` }, { op: "replace", path: "/l/0", value: 0 }];
      const session = await ctx.session();
      const stream = await createStream(ctx, session, { encoding: ENCODING.jsonPatch });
      const zeros = Array.from({ length: items }, () => 0);
      let sequence = 0;
      for (const deltas of build) await append(session, stream.name, deltas, { clientSequence: ++sequence });
      const built = BigInt(build.reduce((sum, deltas) => sum + deltas.length, 0));
      await expectError(
        append(session, stream.name, [...exact, extra], { clientSequence: sequence + 1 }),
        { code: Status.RESOURCE_EXHAUSTED, reason: "DELTA_TOO_LARGE", metadata: { limit: String(bound), index: String(exact.length) } },
        `an append whose operations shift max_snapshot_bytes + 1 items of an array of ${items}`,
      );
      const ok = await append(session, stream.name, [...exact, free], { clientSequence: sequence + 1 });
      checkEqual(ok.headVersion, built + BigInt(exact.length + 1), `head after operations that shift exactly max_snapshot_bytes (${bound}) items, and some that shift none`);
      checkJsonState(await downloadSnapshot(session, stream.name), { l: zeros }, "state after the shifting operations");
    },
  }),
];
