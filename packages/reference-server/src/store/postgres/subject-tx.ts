import type { SubjectEvent, SubjectEventBody } from "../types.js";
import { encodeEventBody } from "../codec.js";
import { encodeNotice, type Notice } from "./fan-out.js";
import type { Query } from "./connection.js";
import { SubjectHeldError } from "../replica-state-types.js";

/**
 * The write transaction of one subject, and the in-process lanes that order them.
 *
 * Every write intent of the PostgreSQL store concerns one subject, and begins by locking
 * that subject's row (`SELECT … FOR UPDATE`). That one lock serializes the writers of a
 * subject across every replica, so what each decides (client sequences, expected versions,
 * a handoff's first resolution) is decided on the state it commits on, and the subject's
 * event sequence can be allocated in memory and written once at the end. Locking the
 * subject first, always, is also the whole lock order: no two writers can deadlock.
 *
 * The same statement reads the subject's hold (ReplicaStateStore.holdSubject): a write of a
 * held subject, by anyone but the holder, fails there with SubjectHeldError.
 *
 * Within one process, writes of a subject also wait in a lane (a promise chain), so that a
 * busy subject queues in memory instead of holding pooled connections while it waits for
 * its own lock, and so that this process's listeners hear its commits in sequence order.
 */

/**
 * The holder of a write that is bookkeeping, not the subject's data (a migration's record on
 * its target): it is written whatever holds the subject.
 */
export const PAST_HOLDS: unique symbol = Symbol("past holds");

/** What a write intent sees of its subject's transaction. */
export interface SubjectTx {
  readonly query: Query;
  readonly subjectId: string;
  /** False when the subject has no row (then nothing may be logged for it). */
  readonly exists: boolean;
  /** Logs an event, committed with the transaction and told to listeners after commit. */
  log(body: SubjectEventBody, now: Date): SubjectEvent;
  /** The next ordinal of the subject (list order of links, devices, grants, checkpoints). */
  ord(): number;
  /** A notice for other replicas that is not an event (erasure, unlinking, a move). */
  notice(notice: Notice): void;
}

/** Runs functions one at a time per key, in call order. */
export interface Lanes {
  run<T>(key: string, fn: () => Promise<T>): Promise<T>;
}

/** Creates {@link Lanes}. */
export function createLanes(): Lanes {
  const tails = new Map<string, Promise<void>>();
  return {
    run(key, fn) {
      const previous = tails.get(key) ?? Promise.resolve();
      const result = previous.then(fn);
      const tail = result.then(
        () => undefined,
        () => undefined,
      );
      tails.set(key, tail);
      void tail.then(() => {
        if (tails.get(key) === tail) tails.delete(key);
      });
      return result;
    },
  };
}

/** The result of a transaction body, with what it logged. */
export interface SubjectTxOutcome<T> {
  readonly result: T;
  readonly events: readonly SubjectEvent[];
  readonly notices: readonly Notice[];
}

/**
 * Runs `fn` inside an open transaction, with the subject's row locked, and writes the
 * subject's counters, its events and the notice to other replicas in one final statement.
 * The caller commits.
 */
export async function runSubjectTx<T>(
  query: Query,
  subjectId: string,
  notify: { readonly channel: string; readonly origin: string },
  fn: (tx: SubjectTx) => Promise<T>,
  holder?: string | typeof PAST_HOLDS,
): Promise<SubjectTxOutcome<T>> {
  const locked = (
    await query<{ event_seq: number; next_ord: number; hold_owner: string | null; hold_until: number }>(
      "SELECT event_seq, next_ord, hold_owner, hold_until FROM subjects WHERE subject_id = $1 FOR UPDATE",
      [subjectId],
    )
  )[0];
  // Under the lock every writer of the subject takes, on every replica: a write that sees no
  // live hold commits before the hold does, so the switch's export (read after the hold
  // committed) hands it over; one that sees the hold writes nothing (PORT-033).
  if (locked !== undefined && holder !== PAST_HOLDS && locked.hold_until > Date.now() && locked.hold_owner !== holder) throw new SubjectHeldError(subjectId);
  let seq = locked?.event_seq ?? 0;
  let ord = locked?.next_ord ?? 0;
  const events: SubjectEvent[] = [];
  const rows: { seq: number; committedAt: number; body: string; stream: string | null; uid: string | null; first: number | null }[] = [];
  const notices: Notice[] = [];
  const tx: SubjectTx = {
    query,
    subjectId,
    exists: locked !== undefined,
    log(body, now) {
      if (locked === undefined) throw new Error("event for a missing subject");
      seq += 1;
      const event: SubjectEvent = { subjectId, sequence: seq, committedAt: now, body };
      events.push(event);
      const batch = body.kind === "deltas-appended" ? body : undefined;
      rows.push({
        seq,
        committedAt: now.getTime(),
        body: encodeEventBody(body),
        stream: batch?.stream.id ?? null,
        uid: batch?.stream.uid ?? null,
        first: batch?.firstVersion ?? null,
      });
      return event;
    },
    ord() {
      if (locked === undefined) throw new Error("ordinal for a missing subject");
      ord += 1;
      return ord;
    },
    notice(notice) {
      notices.push(notice);
    },
  };
  const result = await fn(tx);

  const first = events[0]?.sequence;
  const sent: Notice[] = first === undefined ? [...notices] : [{ kind: "events", subjectId, first, last: seq }, ...notices];
  const countersChanged = locked !== undefined && (seq !== locked.event_seq || ord !== locked.next_ord);
  if (countersChanged || rows.length > 0 || sent.length > 0) {
    const parts: string[] = [];
    const params: unknown[] = [];
    const param = (value: unknown): string => {
      params.push(value);
      return `$${params.length}`;
    };
    if (countersChanged) {
      parts.push(`u AS (UPDATE subjects SET event_seq = ${param(seq)}, next_ord = ${param(ord)} WHERE subject_id = ${param(subjectId)})`);
    }
    if (rows.length > 0) {
      parts.push(
        `e AS (INSERT INTO subject_events (subject_id, seq, committed_at, body, batch_stream, batch_uid, batch_first)
         SELECT ${param(subjectId)}::text, * FROM unnest(${param(rows.map((r) => r.seq))}::bigint[], ${param(rows.map((r) => r.committedAt))}::bigint[],
           ${param(rows.map((r) => r.body))}::text[], ${param(rows.map((r) => r.stream))}::text[], ${param(rows.map((r) => r.uid))}::text[],
           ${param(rows.map((r) => r.first))}::bigint[]))`,
      );
    }
    if (parts.length > 0) await query(`WITH ${parts.join(", ")} SELECT 1`, params);
    // Apart, and touching no table: on a sharded PostgreSQL (Citus) a statement on a
    // subject's tables runs on the subject's worker, while listeners are on the coordinator.
    if (sent.length > 0) {
      await query("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p", [notify.channel, sent.map((n) => encodeNotice(notify.origin, n))]);
    }
  }
  return { result, events, notices };
}
