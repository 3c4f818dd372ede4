import { Status } from "nice-grpc-common";
import type { ContinuityClient } from "../client/continuity-client.js";
import { ContinuityError } from "../errors/continuity-error.js";
import type { QueueStore } from "../queue/queue-store.js";
import { readRecord } from "./record.js";
import {
  followingMoves,
  provisionalInfo,
  requireDeviceSession,
  resolveStream,
  streamNameOf,
  type CreateStreamSpec,
  type StreamEncodingName,
} from "./resolve.js";
import { openingSession, storeSession } from "./session.js";
import type { BoundStream, StreamCore, StreamInfo } from "./stream-core.js";

/** What `openStreamCore` needs from the JSON or opaque handle it opens for. */
export interface OpenCoreSpec<State> {
  readonly store: QueueStore;
  /** Stream id or full name. */
  readonly stream: string;
  readonly create: (CreateStreamSpec & { defaultEncoding: StreamEncodingName }) | undefined;
  readonly signal: AbortSignal | undefined;
  /** Throws when the handle cannot read a stream of this encoding. */
  readonly checkEncoding: (info: StreamInfo) => void;
  readonly makeCore: (info: StreamInfo, device: string) => StreamCore<State>;
}

/** Failures that say the server could not be reached, not that it refused. */
const UNREACHABLE = new Set<Status>([Status.UNAVAILABLE, Status.DEADLINE_EXCEEDED, Status.UNKNOWN]);

/**
 * Opens a stream engine, from the store when it can (offline first) and from the server
 * otherwise.
 *
 * With a session in the store (any earlier online start), a stream the store has a record of
 * opens at once from that record, without any call; the server is asked in the background
 * (`StreamCore.startLocal`). A stream the store has no record of is looked up on the server,
 * and only when the server cannot be reached and `create` says what the stream is, opened
 * empty, to be created when the network is back. Without a stored session, opening needs the
 * server: the token exchange is what names the subject.
 */
export async function openStreamCore<State>(client: ContinuityClient, spec: OpenCoreSpec<State>): Promise<StreamCore<State>> {
  const { store, signal } = spec;
  const resolveLive = (callSignal: AbortSignal | undefined): Promise<BoundStream> =>
    // Opening names the subject: a move met meanwhile is followed and the open starts over.
    followingMoves(client, async () => {
      const live = await requireDeviceSession(client, callSignal);
      const info = await resolveStream(client, live.subject, spec.stream, spec.create, callSignal);
      await storeSession(store, live);
      return { device: live.device, info };
    });
  const startOnline = async (live: BoundStream): Promise<StreamCore<State>> => {
    spec.checkEncoding(live.info);
    const core = spec.makeCore(live.info, live.device);
    try {
      await core.start(signal);
    } catch (error) {
      await core.close().catch(() => undefined);
      throw error;
    }
    return core;
  };

  const session = await openingSession(client, store, signal);
  if (!session.stored) return startOnline(await resolveLive(signal));
  const name = streamNameOf(session.subject, spec.stream);
  let info = (await readRecord(store, session.device, name))?.stream;
  if (info === undefined) {
    try {
      return await startOnline(await resolveLive(signal));
    } catch (error) {
      const failure = ContinuityError.from(error);
      if (spec.create === undefined || !UNREACHABLE.has(failure.code) || signal?.aborted === true) throw failure;
      info = provisionalInfo(name, spec.create);
    }
  }
  spec.checkEncoding(info);
  const core = spec.makeCore(info, session.device);
  await core.startLocal(resolveLive);
  return core;
}
