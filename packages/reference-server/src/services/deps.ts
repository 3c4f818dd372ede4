import type { Logger } from "pino";
import type { TokenAuthority } from "../auth/token-authority.js";
import type { EventHub } from "../events/event-hub.js";
import type { ServerMetrics } from "../ops/metrics.js";
import type { Store } from "../store/types.js";
import type { JsonHeads } from "./json-heads.js";
import type { Mac, PageTokens } from "./paging.js";

/**
 * The limits a server enforces and announces in ServerInfo. Defaults follow the design note;
 * an operator may raise them (never below the protocol minimums in server_info_service.proto).
 */
export interface ServerLimits {
  readonly maxDeltaBytes: number;
  readonly maxBatchDeltas: number;
  readonly maxBatchBytes: number;
  /** Exactly 4096 in protocol v1. */
  readonly maxResumePayloadBytes: number;
  readonly maxStreamsPerSubject: number;
  readonly maxChunkBytes: number;
  readonly maxSnapshotBytes: number;
  readonly maxPageSize: number;
  readonly maxCheckpointStreams: number;
}

/** The limits of a server started without overrides. */
export const DEFAULT_LIMITS: ServerLimits = Object.freeze({
  maxDeltaBytes: 262_144,
  maxBatchDeltas: 500,
  maxBatchBytes: 4_194_304,
  maxResumePayloadBytes: 4096,
  maxStreamsPerSubject: 1000,
  maxChunkBytes: 1_048_576,
  maxSnapshotBytes: 67_108_864,
  maxPageSize: 1000,
  maxCheckpointStreams: 64,
});

/** Tunables of live subscriptions, exposed so tests can make them small. */
export interface SubscriptionSettings {
  /** Events a subscriber may fall behind before it is cut with SUBSCRIBER_TOO_SLOW. */
  readonly queueLimit: number;
  /** Delta payload bytes a subscriber may fall behind by before it is cut the same way. */
  readonly queueBytes: number;
  /** Heartbeat interval when the request leaves it 0. */
  readonly defaultHeartbeatSeconds: number;
  /** How long a message may wait for a client that stopped reading before the call is cut (SUB-034). */
  readonly stallTimeoutMs: number;
}

/** Default subscription tunables. */
export const DEFAULT_SUBSCRIPTION_SETTINGS: SubscriptionSettings = Object.freeze({
  queueLimit: 1000,
  queueBytes: 32 * 1024 * 1024,
  defaultHeartbeatSeconds: 15,
  stallTimeoutMs: 10_000,
});

/**
 * Everything a service needs, handed to every `createXService(deps)` factory. Services get
 * capabilities from here only — never from module state — so a test can build one with a
 * fake clock, and two servers can live in one process.
 */
export interface ServiceDeps {
  readonly store: Store;
  /** JSON streams' head states held in memory, shared by every path that appends. */
  readonly jsonHeads: JsonHeads;
  readonly tokens: TokenAuthority;
  readonly limits: ServerLimits;
  readonly subscriptions: SubscriptionSettings;
  /** Live fan-out of committed subject events to subscriptions. */
  readonly events: EventHub;
  /** Signs and checks AIP-158 page tokens. */
  readonly pageTokens: PageTokens;
  /** Tags what the server hands out and must recognise later (page tokens, cursors), keyed with the store's instance secret. */
  readonly mac: Mac;
  /** The store epoch (ServerInfo.epoch and subscription cursors). */
  readonly epoch: string;
  /** `name/version` for ServerInfo.implementation. */
  readonly implementation: string;
  /** The server's notion of now; injectable for tests. */
  readonly clock: () => Date;
  /** Mints opaque ids (subjects, links, grants, checkpoints, handoffs). */
  readonly newId: () => string;
  readonly logger: Logger;
  readonly metrics: ServerMetrics;
  /** Aborted when the server starts shutting down; long-lived calls end on it. */
  readonly shutdownSignal: AbortSignal;
}
