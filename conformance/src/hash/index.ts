/**
 * The conformance suite's independent implementation of docs/spec/hashing.md. It must never
 * import `@continuity/sdk/protocol`: the suite recomputes every hash a server sends with this
 * code, so that one shared bug cannot make a broken server and a broken suite agree.
 */
export {
  checkpointDigest,
  checkpointPreimage,
  deltaHash,
  deltaPreimage,
  genesisHash,
  genesisPreimage,
  resumePayloadBytes,
  snapshotHash,
  snapshotPreimage,
} from "./preimages.js";
export type { ResumeFields } from "./preimages.js";
export { canonicalJson, JSON_DEPTH_LIMIT, parseStrictJson, StrictJsonError } from "./strict-json.js";
export type { StrictJsonFailure } from "./strict-json.js";
export { applyJsonPatch, applyMergePatch, PatchFailure } from "./patch.js";
export { loadVectorFiles, VECTOR_FILES } from "./vectors.js";
export type * from "./vectors.js";
