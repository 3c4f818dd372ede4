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

export * from "./core.js";
export { createContinuityClient } from "./client/create-client.js";
export { createGrpcTransport } from "./transport/grpc-transport.js";
export type { ClientTlsOptions, GrpcTransportOptions } from "./transport/grpc-transport.js";
export { createFileQueueStore } from "./queue/file-queue-store.js";
