// What both entries of `@continuity/sdk` export: everything that runs in a browser as well
// as in Node. `index.ts` (Node) and `browser.ts` add their own client factory and storage on
// top; one shared list keeps the two surfaces from drifting apart.

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
export { createWebTransport } from "./transport/web-transport.js";
export type { WebTransportOptions, WebWire } from "./transport/web-transport.js";

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

export type { ClientEvents, ClientSession, ContinuityClient, ContinuityClientOptions, SubjectMovedEvent } from "./client/continuity-client.js";
export { PROTOCOL_VERSION } from "./client/auth-middleware.js";
export { backoffDelayMs } from "./client/backoff.js";
export type { BackoffOptions } from "./client/backoff.js";
export type { RetryOptions } from "./client/retry-middleware.js";

export { createMemoryQueueStore } from "./queue/queue-store.js";
export type { MemoryQueueStore, QueueStore } from "./queue/queue-store.js";
export { createIndexedDbQueueStore } from "./queue/indexeddb-queue-store.js";
export type { IndexedDbQueueStoreOptions } from "./queue/indexeddb-queue-store.js";

export type { JsonObject, JsonValue } from "./protocol/index.js";
export { toJsonSafe } from "./stream/json-safe.js";
export type { JsonSafe, JsonSafeError } from "./stream/json-safe.js";
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
