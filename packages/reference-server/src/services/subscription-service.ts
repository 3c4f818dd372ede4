import { continuity } from "@continuity/sdk/gen";
import { Status } from "nice-grpc-common";
import type { AuthCallContextExt, AuthContext } from "../auth/context.js";
import { requireOwnSubject, requireScope } from "../auth/scopes.js";
import { isAbortError, protocolError } from "../errors.js";
import { createBoundedQueue, type BoundedQueue } from "../events/bounded-queue.js";
import type { HubItem } from "../events/event-hub.js";
import type { GrantRecord, StreamAccessKey, StreamRecord, SubjectEvent } from "../store/types.js";
import { subscribeSchema } from "../validation/core-requests.js";
import { grantName, streamName } from "../validation/names.js";
import { parseRequest } from "../validation/validate.js";
import { loadAccess, type StreamAccess } from "./access.js";
import { createCompactShared, createDelivery, parseCompactCursor } from "./compact-delivery.js";
import type { ServiceDeps } from "./deps.js";
import { subjectMovedError } from "./portability/subject-gate.js";
import type { Mac } from "./paging.js";
import { wireCheckpoint, wireDelta, wireHandoff, wireStream } from "./wire.js";

const v1 = continuity.v1;
type Impl = continuity.v1.SubscriptionServiceImplementation<AuthCallContextExt>;
type Message = continuity.v1.SubscribeResponse;

/** Events read from the log per round trip while catching up. */
const REPLAY_PAGE = 256;
/** Most streams named in one AccessRevoked message. */
const MAX_REVOKED_STREAMS = 1000;

/** A parsed subscription cursor: a position in one epoch of a subject's event log. */
export interface Cursor {
  readonly epoch: string;
  readonly sequence: number;
  /** MAC over epoch, subject and sequence: proves the server minted it for that subject. */
  readonly tag: Uint8Array;
}

const TAG_BYTES = 16;

/**
 * Encodes a cursor: base64url of `v2.<epoch>.<sequence>.<tag>`. The epoch stays readable so
 * that a cursor of a wiped store (whose secret, and so whose tags, are gone) can still be
 * answered with `reset` EPOCH_CHANGED. Without a tag the cursor parses but never verifies.
 */
export function formatCursor(cursor: { readonly epoch: string; readonly sequence: number; readonly tag?: Uint8Array }): string {
  const tag = Buffer.from(cursor.tag ?? new Uint8Array(TAG_BYTES)).toString("base64url");
  return Buffer.from(`v2.${cursor.epoch}.${cursor.sequence}.${tag}`, "utf8").toString("base64url");
}

/** Parses the structure of a cursor; undefined when it is not one. Says nothing about its tag. */
export function parseCursor(text: string): Cursor | undefined {
  if (!/^[A-Za-z0-9_-]{1,256}$/.test(text)) return undefined;
  const match = /^v2\.([A-Za-z0-9]{1,64})\.(0|[1-9][0-9]{0,15})\.([A-Za-z0-9_-]{22})$/.exec(Buffer.from(text, "base64url").toString("utf8"));
  // Not a v2 cursor: maybe one rebuilt from a compact subscription (compact-delivery.ts).
  if (match === null) return parseCompactCursor(text);
  const sequence = Number(match[2]);
  const tag = Buffer.from(match[3]!, "base64url");
  if (!Number.isSafeInteger(sequence) || tag.length !== TAG_BYTES) return undefined;
  return { epoch: match[1]!, sequence, tag };
}

/**
 * Mints and recognises the cursors of one subject's feed. The tag binds the subject, so a
 * cursor of one subject is refused by another's feed rather than read as a position in it.
 */
export interface CursorCodec {
  mint(epoch: string, subjectId: string, sequence: number): string;
  verify(cursor: Cursor, subjectId: string): boolean;
}

/** Creates the cursor codec over the server's MAC (keyed with the store's instance secret). */
export function createCursorCodec(mac: Mac): CursorCodec {
  const signed = (epoch: string, subjectId: string, sequence: number) => ["subscription-cursor", epoch, subjectId, sequence];
  return {
    mint: (epoch, subjectId, sequence) => formatCursor({ epoch, sequence, tag: mac.sign(signed(epoch, subjectId, sequence)) }),
    verify: (cursor, subjectId) => mac.verify(signed(cursor.epoch, subjectId, cursor.sequence), cursor.tag),
  };
}

/**
 * SubscriptionService: the live, resumable feed of a subject's changes to one device.
 *
 * The subscription attaches to the in-process hub *before* it reads the log, then replays
 * the log from the cursor and switches to live events, skipping what the replay already
 * covered — so no event committed in between is lost or sent twice. Each event carries the
 * cursor of its log position; events the platform may not see are skipped, but the cursor
 * (carried by the next heartbeat) still moves past them.
 *
 * While it catches up the log, not the live buffer, is the source of truth: a buffer that
 * overflows then is dropped and the replay simply reads on, buffering afresh once it nears
 * the log's head. Erasure and unlinking are not in the log, so they are remembered apart
 * from the buffer and never dropped with it. Only a subscriber that is live and lets its
 * buffer overflow, or whose replay retention overtook, is cut with SUBSCRIBER_TOO_SLOW: a
 * long catch-up on a busy subject never counts against a prompt reader (SUB-033).
 */
export function createSubscriptionService(deps: ServiceDeps): Impl {
  const { store } = deps;
  const cursors = createCursorCodec(deps.mac);
  // A live event reaches every subscriber of its subject as the same object, and what it
  // becomes on the wire (cursor and message) depends only on the event: made once for all
  // of them, not once per subscriber (and encoded once, see subscriptionServiceDefinition).
  const shared: SharedRendering = { cursors: new WeakMap(), deltaMessages: new WeakMap() };
  const compactShared = createCompactShared();

  return {
    async *subscribe(request, { auth, signal }) {
      requireScope(auth, "state.read");
      const req = parseRequest(subscribeSchema, request);
      const requested = req.cursor === "" ? undefined : parseCursor(req.cursor);
      if (req.cursor !== "" && requested === undefined) {
        throw protocolError(Status.INVALID_ARGUMENT, "INVALID_CURSOR", "cursor was not minted by this server");
      }
      // Stryker disable next-line StringLiteral: requireOwnSubject does not look at the intent, so "" changes nothing
      requireOwnSubject(auth, req.parent, "read");
      const deviceId = requireDeviceForSubscribe(auth);
      const subjectId = req.parent;
      // Another epoch's cursor cannot carry a valid tag (its secret went with the old store)
      // and is answered with reset below; in this epoch, only a cursor minted for this
      // subject is a position in its feed.
      if (requested !== undefined && requested.epoch === deps.epoch && !cursors.verify(requested, subjectId)) {
        throw protocolError(Status.INVALID_ARGUMENT, "INVALID_CURSOR", "cursor was not minted by this server for this subject");
      }
      // SUB-060: the form the request asked for; the full form unless it asked for compact.
      const delivery = createDelivery(request.deliveryForm, deps.epoch, compactShared, parseCursor);
      const heartbeatMs = (req.heartbeatSeconds === 0 ? deps.subscriptions.defaultHeartbeatSeconds : req.heartbeatSeconds) * 1000;

      const createBuffer = () =>
        createBoundedQueue<HubItem>(deps.subscriptions.queueLimit, {
          maxWeight: deps.subscriptions.queueBytes,
          weigh: weighItem,
        });
      // Undefined while a catch-up far from the head has dropped it: the log has those events.
      let buffer: BoundedQueue<HubItem> | undefined = createBuffer();
      let erased = false;
      let unlinked = false;
      let moved: { target: string; targetSubject: string } | undefined;
      // Attached before the log's bounds are read: an event committed after the call began
      // is then either below those bounds or in the buffer, never in neither.
      const detach = deps.events.attach(subjectId, (item) => {
        if (item.kind === "subject-erased") erased = true;
        if (item.kind === "subject-moved") moved = item;
        if (item.kind === "account-link-deleted" && item.platformId === auth.platformId) unlinked = true;
        buffer?.push(item);
      });
      const stop = AbortSignal.any([signal, deps.shutdownSignal]);
      const closeMetric = deps.metrics.subscriberOpened();
      try {
        const bounds = await store.getEventBounds(subjectId);
        const epoch = deps.epoch;
        let position: number;
        let first: Message;
        const mint = (sequence: number) => cursors.mint(epoch, subjectId, sequence);
        const reset = (reason: continuity.v1.ResetReason): Message => ({
          cursor: mint(bounds.head),
          event: { $case: "reset", value: { reason, epoch } },
        });

        if (requested === undefined) {
          position = bounds.head;
          first = { cursor: mint(position), event: { $case: "ready", value: { epoch } } };
        } else if (requested.epoch !== epoch) {
          position = bounds.head;
          first = reset(v1.ResetReason.RESET_REASON_EPOCH_CHANGED);
        } else if (requested.sequence < bounds.horizon || requested.sequence > bounds.head) {
          position = bounds.head;
          first = reset(v1.ResetReason.RESET_REASON_CURSOR_EXPIRED);
        } else {
          position = requested.sequence;
          first = { cursor: req.cursor, event: { $case: "ready", value: { epoch } } };
        }

        /** Why the call must end because the subject or this platform's link is gone, if so. */
        const lostAccess = async (): Promise<Error | undefined> => {
          if (erased) return protocolError(Status.UNAUTHENTICATED, "TOKEN_REVOKED", "the subject was erased");
          // PORT-032: a subject that moved ends its subscriptions with the redirect.
          if (moved !== undefined) return subjectMovedError(moved);
          if (!unlinked) return undefined;
          // The link may have been made again since; only a link that is still gone ends the call.
          // Stryker disable next-line BooleanLiteral: a link found again is only looked up again at the next item; lostAccess asks the store either way
          unlinked = false;
          if (await store.hasAccountLink(subjectId, auth.platformId)) return undefined;
          return protocolError(Status.UNAUTHENTICATED, "TOKEN_REVOKED", "the platform's account link was removed");
        };

        let access = await loadAccess(store, auth);
        const context: EventContext = {
          deps,
          auth,
          deviceId,
          subjectId,
          mint,
          shared,
          get access() {
            return access;
          },
          // A grant made after the subscription opened must not make its streams' events
          // vanish: before withholding an event, re-read the grants once.
          async refreshAccess() {
            access = await loadAccess(store, auth);
            return access;
          },
        };

        // Catch up from the log. A batch whose deltas were compacted away, even in part,
        // cannot be sent, so a cursor whose backlog holds one — anywhere, not just in the
        // first page — answers reset instead of ready (SUB-006).
        if (first.event?.$case === "ready" && position < bounds.head && (await backlogCompacted(context, position))) {
          position = bounds.head;
          first = reset(v1.ResetReason.RESET_REASON_CURSOR_EXPIRED);
        }
        yield delivery.first(first);

        // Catch up from the log until a read finds nothing new while an unbroken buffer is
        // attached: that buffer then holds every event after `position`. A cursor at the head
        // with the buffer it attached before reading the bounds needs no read at all.
        let queue: BoundedQueue<HubItem> | undefined = position >= bounds.head && !buffer.overflowed ? buffer : undefined;
        let nearHead = true;
        // Caught up, then live; back to the log whenever the live feed shows a gap.
        for (;;) {
          while (queue === undefined) {
            const ended = await lostAccess();
            if (ended !== undefined) throw ended;
            // Live events are only a shortcut while catching up; the log has them all, in order.
            if (buffer?.overflowed === true) buffer = undefined;
            // Buffer again only near the head, so a long replay does not fill and drop buffer
            // after buffer. Buffering before the next read keeps "in the log or in the buffer".
            if (buffer === undefined && nearHead) buffer = createBuffer();
            const backlog = await store.readEvents(subjectId, position, REPLAY_PAGE);
            if (backlog.length === 0) {
              if (buffer !== undefined && !buffer.overflowed) queue = buffer;
              nearHead = true;
              continue;
            }
            if (backlog[0]!.sequence > position + 1 && (await store.getEventBounds(subjectId)).horizon > position) {
              // Retention discarded events this replay had yet to send: it fell out of the feed.
              // Resubscribing with the last cursor answers reset CURSOR_EXPIRED (SUB-006, SUB-031).
              throw tooSlow();
            }
            // Stryker disable next-line ConditionalExpression: nearHead only decides when a dropped buffer is made again; the log read delivers the same events either way
            nearHead = backlog.length < REPLAY_PAGE;
            for (const event of backlog) {
              const horizon = await compactedHorizon(context, [event]);
              if (horizon !== undefined) {
                // Rare: compaction overtook a catch-up already under way. Resubscribing with
                // the last cursor answers reset, because the check above then sees it.
                throw protocolError(
                  Status.FAILED_PRECONDITION,
                  "HISTORY_COMPACTED",
                  "deltas this subscription still had to deliver were compacted; resubscribe to re-base",
                  { horizonVersion: String(horizon) },
                );
              }
              const outcome = await render(context, event);
              if (outcome.refreshAccess) access = await loadAccess(store, auth);
              for (const message of outcome.messages) yield delivery.later(message);
              position = event.sequence;
              if (outcome.end !== undefined) throw outcome.end;
            }
          }

          // Live from here: erasure or unlinking while catching up may sit in a dropped buffer.
          const ended = await lostAccess();
          if (ended !== undefined) throw ended;
          for (;;) {
            if (queue.overflowed) throw tooSlow();
            const untilExpiry = auth.expiresAt.getTime() - deps.clock().getTime();
            if (untilExpiry <= 0) {
              // SUB-044: a subscription lives no longer than the token that opened it.
              throw protocolError(Status.UNAUTHENTICATED, "TOKEN_EXPIRED", "the access token expired; resubscribe with a fresh one");
            }
            const item = await queue.take(stop, Math.min(heartbeatMs, untilExpiry));
            if (item === "timeout" && deps.clock().getTime() >= auth.expiresAt.getTime()) continue;
            if (item === "timeout") {
              if (queue.overflowed) continue;
              // A notice lost between servers on one database (its listener reconnected) leaves
              // the log ahead of this feed: the heartbeat notices and catches up from the log.
              if ((await store.getEventBounds(subjectId)).head > position) break;
              // Heartbeats also pick up grants made since the subscription started.
              access = await loadAccess(store, auth);
              yield delivery.later({
                cursor: mint(position),
                event: { $case: "heartbeat", value: { serverTime: deps.clock() } },
              });
              continue;
            }
            if (item.kind !== "event") {
              const ended = await lostAccess();
              if (ended !== undefined) throw ended;
              continue;
            }
            const event = item.event;
            if (event.sequence <= position) continue;
            // Commits of one subject through several servers on one database can reach this
            // one out of order; a gap is read from the log, where nothing is ever out of order.
            if (event.sequence > position + 1) break;
            // Most live events render without waiting (see render): no promise per subscriber then.
            const rendered = render(context, event);
            const outcome = rendered instanceof Promise ? await rendered : rendered;
            if (outcome.refreshAccess) access = await loadAccess(store, auth);
            for (const message of outcome.messages) yield delivery.later(message);
            position = event.sequence;
            if (outcome.end !== undefined) throw outcome.end;
          }
          // The live feed skipped a position: read on from the log with a fresh buffer.
          buffer = createBuffer();
          queue = undefined;
          nearHead = true;
        }
      } catch (error) {
        if (isAbortError(error) || stop.aborted) {
          // Stryker disable next-line LogicalOperator: only differs when the client cancelled during shutdown, and a cancelled client sees no status
          if (deps.shutdownSignal.aborted && !signal.aborted) {
            throw protocolError(Status.UNAVAILABLE, "SHUTTING_DOWN", "the server is shutting down; resubscribe with the last cursor");
          }
          return;
        }
        throw error;
      // Stryker disable next-line BlockStatement: detaching and the subscriber gauge only free memory and feed operator metrics; no client sees either
      } finally {
        detach();
        closeMetric();
      }
    },
  };
}

function tooSlow(): Error {
  return protocolError(Status.RESOURCE_EXHAUSTED, "SUBSCRIBER_TOO_SLOW", "the subscriber fell too far behind; resubscribe with the last cursor");
}

/** Roughly what an item pins in memory: its delta payloads. */
function weighItem(item: HubItem): number {
  // Stryker disable next-line StringLiteral: a weight of 0 only lets the byte bound go unchecked; the count bound and SUB-034's stall guard still cut a reader that falls behind (how far is the server's choice)
  if (item.kind !== "event" || item.event.body.kind !== "deltas-appended") return 0;
  let bytes = 0;
  for (const delta of item.event.body.deltas) bytes += delta.payload.length;
  return bytes;
}

function requireDeviceForSubscribe(auth: AuthContext): string {
  if (auth.deviceId === undefined) {
    throw protocolError(Status.FAILED_PRECONDITION, "DEVICE_REQUIRED", "subscriptions need a device-bound token");
  }
  return auth.deviceId;
}

/** What subscriptions of one server share about the events they all render. */
interface SharedRendering {
  readonly cursors: WeakMap<SubjectEvent, string>;
  readonly deltaMessages: WeakMap<SubjectEvent, Message>;
}

/**
 * The Subscribe definition with a response serializer that encodes each message object once:
 * the same DeltasAppended message is written to every subscriber that may read it, and
 * protobuf encoding is then done once per event instead of once per subscriber. A message
 * object is never changed after it is yielded, so its bytes stay valid.
 */
export function subscriptionServiceDefinition(): typeof v1.SubscriptionServiceDefinition {
  const base = v1.SubscriptionServiceDefinition;
  const type = base.methods.subscribe.responseType;
  const encoded = new WeakMap<object, Uint8Array>();
  const responseType = {
    ...type,
    // nice-grpc calls fromPartial before encode; keeping the object is what lets encode
    // recognise it. encode normalises it the way fromPartial would have.
    fromPartial: (message: Message) => message,
    encode(message: Message) {
      let bytes = encoded.get(message);
      if (bytes === undefined) {
        bytes = type.encode(type.fromPartial(message)).finish();
        encoded.set(message, bytes);
      }
      const finished = bytes;
      return { finish: () => finished };
    },
  } as unknown as typeof type;
  return { ...base, methods: { ...base.methods, subscribe: { ...base.methods.subscribe, responseType } } };
}

interface EventContext {
  readonly shared: SharedRendering;
  readonly deps: ServiceDeps;
  readonly auth: AuthContext;
  readonly deviceId: string;
  readonly subjectId: string;
  /** The cursor of a feed position, for this subscription's subject and epoch. */
  mint(sequence: number): string;
  readonly access: StreamAccess;
  refreshAccess(): Promise<StreamAccess>;
}

/** Whether the caller may read every one of the streams, and there is at least one. */
async function mayReadAll(context: EventContext, streams: readonly StreamAccessKey[]): Promise<boolean> {
  if (streams.length === 0) return false;
  for (const stream of streams) if (!(await mayRead(context, stream))) return false;
  return true;
}

/** Whether the caller may read a stream, re-reading grants before saying no. */
async function mayRead(context: EventContext, stream: Pick<StreamRecord, "ownerPlatformId" | "type">): Promise<boolean> {
  if (context.access.canRead(stream)) return true;
  return (await context.refreshAccess()).canRead(stream);
}

interface Rendered {
  readonly messages: Message[];
  /** Ends the call after the messages. */
  readonly end?: Error;
  /** The caller's access may have changed. */
  readonly refreshAccess?: boolean;
}

const SKIP: Rendered = { messages: [] };

/** Whether a readable stream lost any delta of a batch logged after `position` to compaction. */
async function backlogCompacted(context: EventContext, position: number): Promise<boolean> {
  for (const { stream } of await context.deps.store.findCompactedBatches(context.subjectId, position)) {
    if (await mayRead(context, stream)) return true;
  }
  return false;
}

/** The horizon of a still-existing stream whose batch event lost deltas to compaction, if any. */
async function compactedHorizon(context: EventContext, events: readonly SubjectEvent[]): Promise<number | undefined> {
  for (const event of events) {
    const body = event.body;
    if (body.kind !== "deltas-appended" || body.deltas.length === body.count || !context.access.canRead(body.stream)) continue;
    const stream = await context.deps.store.getStream(context.subjectId, body.stream.id);
    if (stream !== undefined && stream.uid === body.stream.uid) return stream.horizonVersion;
  }
  return undefined;
}

/** The cursor of an event's log position, minted once for every subscription that sends it. */
function cursorOf(context: EventContext, event: SubjectEvent): string {
  let cursor = context.shared.cursors.get(event);
  if (cursor === undefined) {
    cursor = context.mint(event.sequence);
    context.shared.cursors.set(event, cursor);
  }
  return cursor;
}

/**
 * What one log event means for this subscription. A batch of a stream the caller can read,
 * the event of nearly every delivery, is rendered at once, without a promise: under fan-out
 * this runs once per subscriber and event. Everything else may need the store.
 */
function render(context: EventContext, event: SubjectEvent): Rendered | Promise<Rendered> {
  const body = event.body;
  if (body.kind === "deltas-appended" && context.access.canRead(body.stream)) return renderDeltas(context, event, body);
  return renderWithStore(context, event);
}

type DeltasAppended = Extract<SubjectEvent["body"], { kind: "deltas-appended" }>;

/** A batch of a stream the caller may read: the message shared by every subscription that sends it. */
function renderDeltas(context: EventContext, event: SubjectEvent, body: DeltasAppended): Rendered {
  // Deltas of a deleted stream are gone with it; its StreamDeleted event follows. A batch
  // is never sent in part (compactedHorizon stops the call before one could be).
  if (body.deltas.length !== body.count) return SKIP;
  const { shared } = context;
  let message = shared.deltaMessages.get(event);
  if (message === undefined) {
    message = { cursor: cursorOf(context, event), event: { $case: "deltasAppended", value: { deltas: body.deltas.map(wireDelta) } } };
    shared.deltaMessages.set(event, message);
  }
  return { messages: [message] };
}

async function renderWithStore(context: EventContext, event: SubjectEvent): Promise<Rendered> {
  const { deviceId, subjectId } = context;
  const cursor = cursorOf(context, event);
  const body = event.body;
  switch (body.kind) {
    case "deltas-appended":
      if (!(await mayRead(context, body.stream))) return SKIP;
      return renderDeltas(context, event, body);
    case "stream-created":
      if (!(await mayRead(context, body.stream))) return SKIP;
      return { messages: [{ cursor, event: { $case: "streamCreated", value: { stream: wireStream(body.stream) } } }] };
    case "stream-deleted":
      if (!(await mayRead(context, body.stream))) return SKIP;
      return {
        messages: [
          {
            cursor,
            event: { $case: "streamDeleted", value: { stream: streamName(subjectId, body.stream.id), streamUid: body.stream.uid } },
          },
        ],
      };
    case "stream-compacted":
      if (!(await mayRead(context, body.stream))) return SKIP;
      return { messages: [{ cursor, event: { $case: "streamCompacted", value: { stream: wireStream(body.stream) } } }] };
    case "handoff-offered": {
      const { handoff, checkpoint } = body;
      if (handoff.sourceDeviceId === deviceId) return SKIP;
      if (handoff.targetDeviceId !== undefined && handoff.targetDeviceId !== deviceId) return SKIP;
      for (const e of checkpoint.entries) {
        if (!(await mayRead(context, { ownerPlatformId: e.ownerPlatformId, type: e.streamType }))) return SKIP;
      }
      return {
        messages: [
          {
            cursor,
            event: { $case: "handoffOffered", value: { handoff: wireHandoff(handoff), checkpoint: wireCheckpoint(checkpoint) } },
          },
        ],
      };
    }
    case "handoff-resolved": {
      const { handoff } = body;
      const concerned =
        handoff.sourceDeviceId === deviceId || handoff.targetDeviceId === undefined || handoff.targetDeviceId === deviceId;
      if (!concerned) return SKIP;
      // Judged on the streams captured at offer time: the checkpoint may be deleted by now
      // (which is what expires a pending handoff), and a handoff nobody can be shown to
      // have read access to is shown to nobody.
      if (!(await mayReadAll(context, handoff.checkpointStreams))) return SKIP;
      return { messages: [{ cursor, event: { $case: "handoffResolved", value: { handoff: wireHandoff(handoff) } } }] };
    }
    case "grant-revoked":
      if (body.grant.granteePlatformId !== context.auth.platformId) return SKIP;
      return grantRevoked(context, body.grant, cursor);
    case "device-revoked": {
      if (body.deviceId !== deviceId) return SKIP;
      const streams = await readableStreamNames(context, context.access);
      return {
        messages: [{ cursor, event: { $case: "accessRevoked", value: { grant: "", streams } } }],
        end: protocolError(Status.PERMISSION_DENIED, "DEVICE_REVOKED", "this device was revoked"),
      };
    }
  }
}

/**
 * A grant held by this platform was revoked: the streams it alone made readable are lost.
 * If there are any, tell the subscriber which and end the call; otherwise carry on.
 */
async function grantRevoked(context: EventContext, grant: GrantRecord, cursor: string): Promise<Rendered> {
  const { deps, subjectId } = context;
  const now = await loadAccess(deps.store, context.auth);
  const covered = await deps.store.listStreams(
    subjectId,
    {
      // Only the grant's share: the platform's own streams never depend on a grant.
      // Stryker disable next-line StringLiteral: no platform id is empty either, so no stream is owned by the platform named
      visibility: { platformId: "\u0000", shared: [{ ownerPlatformId: grant.grantorPlatformId, streamType: grant.streamType }] },
      type: undefined,
    },
    { after: undefined, limit: MAX_REVOKED_STREAMS },
  );
  const lost = covered.items.filter((s) => !now.canRead(s)).map((s) => streamName(subjectId, s.id));
  if (lost.length === 0) return { messages: [], refreshAccess: true };
  return {
    messages: [{ cursor, event: { $case: "accessRevoked", value: { grant: grantName(subjectId, grant.id), streams: lost } } }],
    end: protocolError(Status.PERMISSION_DENIED, "GRANT_REVOKED", "a grant this subscription relied on was revoked"),
    // Stryker disable next-line BooleanLiteral: the call ends with this outcome, so its access is never read again
    refreshAccess: true,
  };
}

async function readableStreamNames(context: EventContext, access: StreamAccess): Promise<string[]> {
  const page = await context.deps.store.listStreams(
    context.subjectId,
    { visibility: access.visibility, type: undefined },
    { after: undefined, limit: MAX_REVOKED_STREAMS },
  );
  return page.items.map((s) => streamName(context.subjectId, s.id));
}
