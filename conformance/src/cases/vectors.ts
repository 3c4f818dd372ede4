import { loadVectorFiles } from "../hash/index.js";
import type { CaseContext, Session } from "../harness/context.js";
import { defineCase } from "../harness/define-case.js";
import { checkEqual, expectError, fail, Status } from "../harness/expect.js";
import { append, createStream, downloadSnapshot, ENCODING, listAllDeltas, verifyStreamChain } from "../harness/streams.js";

const vectors = loadVectorFiles();
const MAX_PAYLOAD_DEPTH = 200;

function depth(value: unknown): number {
  if (Array.isArray(value)) return 1 + Math.max(0, ...value.map(depth));
  if (value !== null && typeof value === "object") return 1 + Math.max(0, ...Object.values(value).map(depth));
  return 0;
}

function pointer(path: readonly (string | number)[]): string {
  return path.map((token) => `/${String(token).replace(/~/g, "~0").replace(/\//g, "~1")}`).join("");
}

/**
 * JSON Patches that build `state` from `{}`. A state nested deeper than one payload may be
 * is built in slices (each subtree below MAX_PAYLOAD_DEPTH set by its own replace), so that
 * vectors near the 256-level limit can be set up without tripping the limit themselves.
 */
function patchesBuilding(state: unknown): unknown[][] {
  const patches: unknown[][] = [];
  const place = (value: unknown, path: (string | number)[]): void => {
    const cut: { path: (string | number)[]; value: unknown }[] = [];
    const trim = (node: unknown, at: (string | number)[], level: number): unknown => {
      if (node === null || typeof node !== "object") return node;
      if (level >= MAX_PAYLOAD_DEPTH) {
        cut.push({ path: at, value: node });
        return null;
      }
      if (Array.isArray(node)) return node.map((item, index) => trim(item, [...at, index], level + 1));
      return Object.fromEntries(Object.entries(node).map(([key, item]) => [key, trim(item, [...at, key], level + 1)]));
    };
    const trimmed = trim(value, path, 0);
    patches.push([{ op: path.length === 0 ? "add" : "replace", path: pointer(path), value: trimmed }]);
    for (const slice of cut) place(slice.value, slice.path);
  };
  place(state, []);
  return patches;
}

async function checkState(session: Session, stream: string, expectedHex: string, what: string): Promise<void> {
  const snapshot = await downloadSnapshot(session, stream);
  if (snapshot.state.toString("hex") !== expectedHex) {
    fail(`${what}: expected ${Buffer.from(expectedHex, "hex").toString("utf8").slice(0, 300)}, got ${snapshot.state.toString("utf8").slice(0, 300)}`);
  }
}

async function runMaterializeVector(ctx: CaseContext, session: Session, vector: (typeof vectors)["materialize.json"][number]): Promise<void> {
  const stream = await createStream(ctx, session, { encoding: vector.encoding });
  const initial = JSON.parse(Buffer.from(vector.initialStateHex, "hex").toString("utf8")) as unknown;
  let seq = 1;
  if (vector.encoding === ENCODING.jsonPatch) {
    if (depth(initial) > 0 && JSON.stringify(initial) !== "{}") {
      for (const patch of patchesBuilding(initial)) await append(session, stream.name, [patch], { clientSequence: seq++ });
    }
  } else if (JSON.stringify(initial) !== "{}") {
    ctx.skip(`vector ${vector.id}: a merge-patch initial state other than {} cannot be set up`);
  }
  await checkState(session, stream.name, vector.initialStateHex, `${vector.id}: initial state`);
  for (const [index, step] of vector.steps.entries()) {
    await append(session, stream.name, [Buffer.from(step.patchHex, "hex")], { clientSequence: seq++ });
    await checkState(session, stream.name, step.stateHex, `${vector.id}: state after step ${index + 1}`);
  }
  if (vector.failing !== undefined) {
    const expected = vector.failing.outcome === "malformed" ? { code: Status.INVALID_ARGUMENT, reason: "MALFORMED_PAYLOAD" } : { code: Status.FAILED_PRECONDITION, reason: "PATCH_NOT_APPLICABLE" };
    await expectError(append(session, stream.name, [Buffer.from(vector.failing.patchHex, "hex")], { clientSequence: seq }), { ...expected, metadata: { index: "0" } }, `${vector.id}: ${Buffer.from(vector.failing.patchHex, "hex").toString("utf8").slice(0, 80)}`);
    const last = vector.steps.at(-1)?.stateHex ?? vector.initialStateHex;
    await checkState(session, stream.name, last, `${vector.id}: state after the refused patch`);
  }
  await verifyStreamChain(session, stream.name);
}

/** The published vectors, replayed over the wire: what a server stores and materializes. */
export const VECTOR_CASES = [
  defineCase({
    id: "hash.canonical-json-vectors",
    requirements: ["HASH-026", "HASH-023", "HASH-011", "HASH-050", "APPEND-043"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session, { encoding: ENCODING.mergePatch });
      const inputs = vectors["canonical-json.json"];
      await append(session, stream.name, inputs.map((v) => Buffer.from(v.inputHex, "hex")), { clientSequence: 1 });
      const deltas = await listAllDeltas(session, stream.name);
      for (const [index, vector] of inputs.entries()) {
        checkEqual(Buffer.from(deltas[index]?.payload ?? []).toString("hex"), vector.canonicalHex, `stored payload of vector ${vector.id} (${vector.canonicalText.slice(0, 60)})`);
      }
      await verifyStreamChain(session, stream.name);
    },
  }),
  defineCase({
    id: "hash.malformed-json-vectors-refused",
    requirements: ["HASH-020", "HASH-021", "HASH-022", "HASH-023", "HASH-024", "HASH-025", "HASH-050", "APPEND-040"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session, { encoding: ENCODING.mergePatch });
      for (const vector of vectors["malformed-json.json"]) {
        await expectError(append(session, stream.name, [{ ok: true }, Buffer.from(vector.inputHex, "hex")], { clientSequence: 1 }), { code: Status.INVALID_ARGUMENT, reason: "MALFORMED_PAYLOAD", metadata: { index: "1" } }, `vector ${vector.id} (${vector.reason})`);
      }
      checkEqual((await listAllDeltas(session, stream.name)).length, 0, "nothing stored from refused payloads");
    },
  }),
  defineCase({
    id: "hash.materialize-vectors",
    requirements: ["HASH-030", "HASH-031", "HASH-032", "HASH-033", "HASH-034", "HASH-035", "HASH-036", "HASH-050", "APPEND-041", "APPEND-042"],
    profile: "core",
    timeoutMs: 60_000,
    async run(ctx) {
      const session = await ctx.session();
      for (const vector of vectors["materialize.json"]) await runMaterializeVector(ctx, session, vector);
    },
  }),
];
