/**
 * `@continuity/bundle`: the vendor-neutral bundle a subject leaves a server with
 * (docs/spec/portability.md). The `.cbundle` file framing, the records digest, the
 * exporter's signature, and a streaming verifier — one implementation shared by the
 * reference server's export and import, the `continuity` CLI, and anyone embedding an
 * importer in Node.
 */
export { createRecordsDigest, RECORDS_DIGEST_TAG } from "./digest.js";
export type { DigestPieces, RecordsDigest } from "./digest.js";
export { BundleFramingError, DEFAULT_MAX_PART_BYTES, frame, framePrefix, readFrames } from "./framing.js";
export { partJson, recordDigestPieces } from "./proto-json.js";
export { createBundleSealer } from "./sealer.js";
export type { BundleSealer, BundleSigningKey } from "./sealer.js";
export {
  BUNDLE_SIGNATURE_ALGORITHMS,
  BUNDLE_SIGNATURE_TYP,
  BundleSignatureError,
  signaturePayload,
  signBundle,
  verifyBundleSignature,
} from "./signature.js";
export type { BundleSignatureAlgorithm, SignedBundleFacts } from "./signature.js";
export { BUNDLE_FORMAT_VERSION, BundleVerificationError, createBundleVerifier } from "./verify.js";
export type { BundleVerifier, BundleVerifierOptions, VerifiedPart } from "./verify.js";
