/**
 * `@continuity/sdk`: what a platform embeds to keep a person's state in step across devices
 * and platforms.
 *
 * Two layers: a low-level typed client over every `continuity.v1` service
 * (`createContinuityClient`), and high-level handles that keep a verified local replica of
 * a stream with optimistic updates, a persisted offline queue and automatic rebase
 * (`openStream`, `openOpaqueStream`, `createReplica`), plus checkpoints, handoff and resume.
 *
 * Generated messages live in `@continuity/sdk/gen` and hashing in `@continuity/sdk/protocol`;
 * this entry re-exports the generated `continuity.v1` namespace as `v1` for convenience.
 *
 * @packageDocumentation
 */

export * as v1 from "./gen/index.continuity.v1.js";
export { Status } from "nice-grpc-common";

export {
  CONTINUITY_ERROR_DOMAIN,
  ContinuityError,
  hasReason,
  isAbortLike,
  isContinuityError,
} from "./errors/continuity-error.js";
export type { ContinuityErrorInit, FieldViolation } from "./errors/continuity-error.js";

export type { ContinuityCallOptions, ContinuityCallOptionsExt, ServiceDefinitionLike, Transport } from "./transport/transport.js";
export { createGrpcTransport } from "./transport/grpc-transport.js";
export type { ClientTlsOptions, GrpcTransportOptions } from "./transport/grpc-transport.js";

export { createAssertionTokenProvider, createStaticTokenProvider } from "./auth/token-provider.js";
export type {
  AccessToken,
  AssertionTokenProviderOptions,
  TokenExchangeParams,
  TokenProvider,
  TokenRequestContext,
} from "./auth/token-provider.js";

export { createLinkCode, grantStreamAccess, redeemLinkCode } from "./auth/linking.js";
export type { LinkCode } from "./auth/linking.js";

export { createContinuityClient } from "./client/continuity-client.js";
export type { ClientEvents, ClientSession, ContinuityClient, ContinuityClientOptions, SubjectMovedEvent } from "./client/continuity-client.js";
export { PROTOCOL_VERSION } from "./client/auth-middleware.js";
export { backoffDelayMs } from "./client/backoff.js";
export type { BackoffOptions } from "./client/backoff.js";
export type { RetryOptions } from "./client/retry-middleware.js";

export { createMemoryQueueStore } from "./queue/queue-store.js";
export type { MemoryQueueStore, QueueStore } from "./queue/queue-store.js";
export { createFileQueueStore } from "./queue/file-queue-store.js";

export type { JsonObject, JsonValue } from "./protocol/index.js";
export type { EventSource, Unsubscribe } from "./stream/emitter.js";
export type { StreamChange, StreamCoreEvents, StreamStatus, WriteAcknowledged, WriteRejected } from "./stream/stream-core.js";
export type { ConflictPolicyName, CreateStreamSpec, StreamEncodingName } from "./stream/resolve.js";
export { openStream } from "./stream/json-stream.js";
export type { JsonChange, JsonStream, JsonStreamEvents, OpenStreamOptions } from "./stream/json-stream.js";
export { openOpaqueStream } from "./stream/opaque-stream.js";
export type { OpaqueDelta, OpaqueSnapshot, OpaqueStream, OpaqueStreamEvents, OpenOpaqueStreamOptions } from "./stream/opaque-stream.js";
export { fetchVerifiedSnapshot } from "./stream/snapshot.js";
export type { VerifiedSnapshot } from "./stream/snapshot.js";

export {
  createCheckpoint,
  loadCheckpointState,
  offerHandoff,
  resumeCheckpoint,
  toResumePayload,
  verifyDigest,
} from "./handoff/checkpoints.js";
export type {
  CheckpointStreamRef,
  CreateCheckpointOptions,
  ResumeInfo,
  ResumeResult,
  ResumedJsonStream,
  ResumedOpaqueStream,
  ResumedStream,
  ResumedStreamBase,
  VersionedStreamRef,
} from "./handoff/checkpoints.js";

export { createReplica } from "./subscription/replica.js";
export type {
  CheckpointableStream,
  ConnectionEvent,
  HandOffResult,
  HandoffOffer,
  Replica,
  ReplicaCheckpointOptions,
  ReplicaEvents,
  ReplicaOptions,
  RetryingEvent,
  SubscriptionResetEvent,
} from "./subscription/replica.js";
