import type { ContinuityClient } from "../client/continuity-client.js";
import type { QueueStore } from "../queue/queue-store.js";
import { followingMoves, requireDeviceSession } from "./resolve.js";

/** The subject and device a store's records belong to. */
export interface DeviceSession {
  /** `subjects/{subject}`. */
  readonly subject: string;
  /** `subjects/{subject}/devices/{device}`. */
  readonly device: string;
}

/**
 * Where a store keeps the session it was last used with. Records are keyed by device and
 * stream name, both of which carry the subject id that only the token exchange reveals; with
 * the session kept locally, a cold start finds its records without asking the server.
 */
const SESSION_KEY = "session";

/** The session stored by the last online start, if any; a value this SDK cannot read counts as none. */
export async function readStoredSession(store: QueueStore): Promise<DeviceSession | undefined> {
  const text = await store.read(SESSION_KEY);
  if (text === undefined) return undefined;
  try {
    const value = JSON.parse(text) as { format?: unknown; subject?: unknown; device?: unknown };
    if (value.format !== 1 || typeof value.subject !== "string" || typeof value.device !== "string") return undefined;
    if (!value.device.startsWith(`${value.subject}/devices/`)) return undefined;
    return { subject: value.subject, device: value.device };
  } catch {
    return undefined;
  }
}

/** Remembers `session` for the next cold start. */
export async function storeSession(store: QueueStore, session: DeviceSession): Promise<void> {
  const stored = await readStoredSession(store);
  if (stored?.subject === session.subject && stored.device === session.device) return;
  await store.write(SESSION_KEY, JSON.stringify({ format: 1, subject: session.subject, device: session.device }));
}

/** The session the server names now (a token exchange, unless the client holds a token), stored for the next start. */
export async function liveSession(client: ContinuityClient, store: QueueStore, signal: AbortSignal | undefined): Promise<DeviceSession> {
  const session = await followingMoves(client, () => requireDeviceSession(client, signal));
  await storeSession(store, session);
  return session;
}

/**
 * The session to open with: the stored one at once, without the network, when the store has
 * one; otherwise the live one. A stored session is checked against the live one once the
 * network is there (`SESSION_CHANGED` when they differ).
 */
export async function openingSession(
  client: ContinuityClient,
  store: QueueStore,
  signal: AbortSignal | undefined,
): Promise<DeviceSession & { readonly stored: boolean }> {
  const stored = await readStoredSession(store);
  if (stored !== undefined) return { ...stored, stored: true };
  return { ...(await liveSession(client, store, signal)), stored: false };
}
