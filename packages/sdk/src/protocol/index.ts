/**
 * `@continuity/sdk/protocol`: the byte-exact core of Continuity v1 shared by the SDK and the
 * reference server. Hashes, canonical JSON and JSON delta semantics are defined normatively in
 * docs/spec/hashing.md; conformance/vectors holds test vectors for other languages.
 *
 * Synchronous and browser-safe (no node: imports).
 */
export { bytesEqual, concatBytes, fromHex, toHex } from "./bytes.js";
export {
  DiffNotExpressibleError,
  isMalformedPatchError,
  isPatchNotApplicableError,
  MalformedPatchError,
  PatchNotApplicableError,
} from "./errors.js";
export type { MalformedReason, NotApplicableReason } from "./errors.js";
export {
  canonicalJson,
  canonicalJsonText,
  cloneJson,
  INITIAL_JSON_STATE,
  jsonEquals,
  MAX_JSON_DEPTH,
  parseJsonDocument,
  RESERVED_MEMBER_NAME,
} from "./json.js";
export type { JsonObject, JsonValue } from "./json.js";
export {
  checkpointDigest,
  checkpointPreimage,
  createSnapshotHasher,
  deltaHash,
  deltaPreimage,
  deltaPreimageHeader,
  DOMAIN_TAGS,
  genesisHash,
  genesisPreimage,
  HASH_LENGTH,
  MAX_RESUME_PAYLOAD_BYTES,
  resumePayloadBytes,
  snapshotHash,
  snapshotPreimage,
  snapshotPreimageHeader,
} from "./hashes.js";
export type {
  CheckpointDigestInput,
  CheckpointEntryInput,
  DeltaHashInput,
  GenesisInput,
  SnapshotHasher,
  SnapshotHashInput,
} from "./hashes.js";
export { applyJsonDelta, canonicalDeltaPayload, canonicalSize, checkJsonDeltaStructure, diffJsonStates, materializeJsonState } from "./json-delta.js";
export type { JsonDeltaEncoding, JsonDeltaOptions } from "./json-delta.js";
export { editJsonState } from "./json-state.js";
export { countOf, indexedMemberNames, memberNames, recordMemberNames, WIDE_OBJECT_MEMBERS } from "./member-names.js";
export type { JsonStateEditor } from "./json-state.js";
export { verifyChain } from "./chain.js";
export type { ChainBreak, ChainDelta, ChainStart, ChainVerification } from "./chain.js";
