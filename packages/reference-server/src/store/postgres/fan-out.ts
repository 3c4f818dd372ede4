import type pg from "pg";
import { createPgClient, type PgLocation } from "./connection.js";

/**
 * Fan-out of commits between replicas of one database, through PostgreSQL LISTEN/NOTIFY.
 *
 * Every writing transaction of the store sends one small notice (`pg_notify` inside the
 * transaction, so it is delivered only if, and when, the transaction commits). Notices name
 * what changed — a subject and the range of its event log that the commit wrote, an erasure,
 * an unlinked platform, a move — but carry no state: a replica that has subscribers for the
 * subject reads the events from the log, which stays the only source of truth. PostgreSQL
 * delivers notices in commit order, and commits of one subject are serialized by the
 * subject's row lock, so the notices of one subject arrive in sequence order.
 *
 * Notices of this process's own commits are ignored (their listeners were told at commit).
 */

/** What one commit changed, as sent to the other replicas. */
export type Notice =
  | { readonly kind: "events"; readonly subjectId: string; readonly first: number; readonly last: number }
  | { readonly kind: "subject-erased"; readonly subjectId: string }
  | { readonly kind: "account-link-deleted"; readonly subjectId: string; readonly platformId: string }
  | { readonly kind: "subject-moved"; readonly subjectId: string; readonly target: string; readonly targetSubject: string };

/** PostgreSQL refuses notify payloads of 8000 bytes or more. */
const MAX_PAYLOAD_BYTES = 7999;
const RECONNECT_MS = 1000;

/** The channel of a schema's notices (an identifier of at most 63 bytes). */
export function channelOf(schema: string): string {
  return `continuity_${schema}`;
}

/** The payload of a notice sent by `origin`. */
export function encodeNotice(origin: string, notice: Notice): string {
  const text = JSON.stringify({ o: origin, ...notice });
  if (Buffer.byteLength(text) > MAX_PAYLOAD_BYTES) throw new Error("notice too large for NOTIFY");
  return text;
}

/** Parses a payload; undefined when it is not a notice (or is this process's own). */
export function decodeNotice(payload: string, origin: string): Notice | undefined {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== "object") return undefined;
  const v = value as Record<string, unknown>;
  if (v["o"] === origin || typeof v["subjectId"] !== "string") return undefined;
  const subjectId = v["subjectId"];
  switch (v["kind"]) {
    case "events":
      if (!Number.isSafeInteger(v["first"]) || !Number.isSafeInteger(v["last"])) return undefined;
      return { kind: "events", subjectId, first: v["first"] as number, last: v["last"] as number };
    case "subject-erased":
      return { kind: "subject-erased", subjectId };
    case "account-link-deleted":
      return typeof v["platformId"] === "string" ? { kind: "account-link-deleted", subjectId, platformId: v["platformId"] } : undefined;
    case "subject-moved":
      return typeof v["target"] === "string" && typeof v["targetSubject"] === "string"
        ? { kind: "subject-moved", subjectId, target: v["target"], targetSubject: v["targetSubject"] }
        : undefined;
    default:
      return undefined;
  }
}

/** A running listener; see {@link startListener}. */
export interface Listener {
  close(): Promise<void>;
}

/**
 * Listens on the schema's channel on a connection of its own, reconnecting after a loss.
 * `onReconnect` is told after a reconnection, since notices sent meanwhile were missed.
 */
export async function startListener(
  location: PgLocation,
  origin: string,
  handlers: {
    readonly onNotice: (notice: Notice) => void;
    readonly onReconnect: () => void;
    readonly onError: (error: unknown) => void;
  },
): Promise<Listener> {
  const channel = channelOf(location.schema);
  let closed = false;
  let client: pg.Client | undefined;
  let timer: NodeJS.Timeout | undefined;

  const connect = async (): Promise<void> => {
    const next = createPgClient(location);
    next.on("notification", (message) => {
      if (message.channel !== channel || message.payload === undefined) return;
      const notice = decodeNotice(message.payload, origin);
      if (notice !== undefined) handlers.onNotice(notice);
    });
    const lost = (error?: unknown): void => {
      if (error !== undefined) handlers.onError(error);
      if (client !== next) return;
      client = undefined;
      next.end().catch(() => undefined);
      schedule();
    };
    next.on("error", lost);
    next.on("end", () => lost());
    await next.connect();
    await next.query(`LISTEN ${channel}`);
    client = next;
  };
  const schedule = (): void => {
    if (closed || timer !== undefined) return;
    timer = setTimeout(() => {
      timer = undefined;
      connect().then(handlers.onReconnect, (error: unknown) => {
        handlers.onError(error);
        schedule();
      });
    }, RECONNECT_MS);
    timer.unref();
  };

  await connect();
  return {
    async close() {
      closed = true;
      clearTimeout(timer);
      const current = client;
      client = undefined;
      await current?.end().catch(() => undefined);
    },
  };
}
