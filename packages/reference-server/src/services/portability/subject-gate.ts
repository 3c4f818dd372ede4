import { ServerError, Status, type CallContext, type ServerMiddleware, type ServerMiddlewareCall } from "nice-grpc-common";
import type { AuthCallContextExt } from "../../auth/context.js";
import { protocolError } from "../../errors.js";
import { randomUUID } from "node:crypto";
import { SubjectHeldError, type Store, type SubjectMoveRecord } from "../../store/index.js";

/** The answer to every call for a subject that moved (PORT-032). */
export function subjectMovedError(move: Pick<SubjectMoveRecord, "target" | "targetSubject">): Error {
  return protocolError(Status.FAILED_PRECONDITION, "SUBJECT_MOVED", `the subject moved to ${move.target}`, { target: move.target, subject: move.targetSubject });
}

/** A subject's writes held for a switch; see {@link SubjectGate.hold}. */
export interface SubjectHold {
  /** When the hold began. */
  readonly since: number;
  /** Records the move durably, then answers every held and later call with SUBJECT_MOVED. */
  commit(move: SubjectMoveRecord): Promise<void>;
  /** Lets the held writes go ahead; the subject is served as before. Idempotent. */
  release(): void;
}

/**
 * Where writes to a subject wait while it is switched to another server (PORT-033).
 *
 * A hold stops new writes of one subject at the door, then waits until the writes already
 * inside have finished, so that what the switch hands over is everything acknowledged. The
 * door is in this process, the hold itself in the store (ReplicaStateStore.holdSubject), so
 * that it holds on every server of the store: a write through another replica fails in its
 * transaction with SubjectHeldError, writing nothing, and waits here for the outcome of the
 * switch — SUBJECT_MOVED once the move is recorded, or its call runs again once the hold is
 * released. When the transfer call ends without a commit — the target died, the network
 * broke — the hold is released; a hold longer than `maxHoldMs` releases itself, in the store
 * too, so the hold of a server that died ends with its time.
 */
export interface SubjectGate {
  hold(subjectId: string, options: { readonly maxHoldMs: number; readonly drainTimeoutMs: number }): Promise<SubjectHold>;
  /** The nice-grpc middleware, placed after authentication. */
  readonly middleware: ServerMiddleware<AuthCallContextExt, AuthCallContextExt>;
}

/** Methods that only read, which a hold lets through. Everything else of a subject waits. */
const READ_ONLY = /\/(Get|List)[A-Za-z]*$|\/(Subscribe|ExportSubject)$/;
/** Calls a hold never waits for or stops: the switch itself. */
const EXEMPT = new Set(["/continuity.v1.PortabilityService/TransferSubject"]);

interface GateState {
  inFlight: number;
  drained: (() => void) | undefined;
  hold: { promise: Promise<"released" | SubjectMoveRecord>; resolve: (outcome: "released" | SubjectMoveRecord) => void } | undefined;
}

/** How often a write held by another server's switch looks whether the switch has ended. */
const HELD_POLL_MS = 50;

/** Creates the gate over `store`'s record of moves and holds. */
export function createSubjectGate(
  store: Pick<Store, "getSubjectMove" | "holdSubject" | "getSubjectHold" | "releaseSubjectHold" | "recordHeldSubjectMove">,
): SubjectGate {
  /** Waits out a hold in the store (another server's switch): the move it recorded, or `released`. */
  const heldElsewhere = async (subjectId: string, signal: AbortSignal): Promise<"released" | SubjectMoveRecord> => {
    for (;;) {
      const move = await store.getSubjectMove(subjectId);
      if (move !== undefined) return move;
      if ((await store.getSubjectHold(subjectId, new Date())) === undefined) return "released";
      if (signal.aborted) throw new ServerError(Status.CANCELLED, "the call was cancelled while its subject was held for a switch");
      await new Promise((resolve) => setTimeout(resolve, HELD_POLL_MS));
    }
  };
  const states = new Map<string, GateState>();
  const stateOf = (subjectId: string): GateState => {
    let state = states.get(subjectId);
    if (state === undefined) {
      state = { inFlight: 0, drained: undefined, hold: undefined };
      states.set(subjectId, state);
    }
    return state;
  };
  const forget = (subjectId: string, state: GateState): void => {
    if (state.inFlight === 0 && state.hold === undefined && states.get(subjectId) === state) states.delete(subjectId);
  };
  const leave = (subjectId: string, state: GateState | undefined): void => {
    if (state === undefined) return;
    state.inFlight -= 1;
    if (state.inFlight === 0) state.drained?.();
    forget(subjectId, state);
  };

  const middleware: ServerMiddleware<AuthCallContextExt, AuthCallContextExt> = async function* subjectGate<Request, Response>(
    call: ServerMiddlewareCall<Request, Response, AuthCallContextExt>,
    context: CallContext & AuthCallContextExt,
  ): AsyncGenerator<Response, Response | void, undefined> {
    const subjectId = context.auth?.subjectId;
    if (subjectId === undefined || EXEMPT.has(call.method.path)) return yield* call.next(call.request, context);
    // Held or not, a read-only call of a moved subject is answered SUBJECT_MOVED too (below).
    const write = !READ_ONLY.test(call.method.path);
    let entered: GateState | undefined;
    for (;;) {
      const state = states.get(subjectId);
      // Held: a write waits for the outcome of the switch.
      if (write && state?.hold !== undefined) {
        const outcome = await state.hold.promise;
        if (outcome !== "released") throw subjectMovedError(outcome);
        continue;
      }
      // A write is counted in flight before anything is awaited, so a hold that begins
      // meanwhile waits for it instead of missing it.
      if (write) {
        entered = stateOf(subjectId);
        entered.inFlight += 1;
      }
      let move: SubjectMoveRecord | undefined;
      try {
        move = await store.getSubjectMove(subjectId);
      } catch (error) {
        leave(subjectId, entered);
        throw error;
      }
      if (move !== undefined) {
        leave(subjectId, entered);
        throw subjectMovedError(move);
      }
      break;
    }
    try {
      return yield* call.next(call.request, context);
    } catch (error) {
      if (!(error instanceof SubjectHeldError)) throw error;
      // Held by a switch that began after this call passed the door (on another server, or
      // here between the door and the transaction): nothing was written. Out of the count of
      // writes in flight first, or a hold here would wait for this call and it for the hold.
      leave(subjectId, entered);
      entered = undefined;
      const outcome = await heldElsewhere(subjectId, context.signal);
      if (outcome !== "released") throw subjectMovedError(outcome);
      // A unary call is whole in its request and may run again; a streamed one was consumed.
      if (call.method.requestStream) throw protocolError(Status.UNAVAILABLE, "SHUTTING_DOWN", "the subject was held for a switch that did not complete; send the call again");
      return yield* subjectGate(call, context);
    } finally {
      leave(subjectId, entered);
    }
  };

  return {
    middleware,
    async hold(subjectId, options) {
      const state = stateOf(subjectId);
      if (state.hold !== undefined) throw protocolError(Status.FAILED_PRECONDITION, "MIGRATION_CONFLICT", "the subject is being transferred already");
      let resolve!: (outcome: "released" | SubjectMoveRecord) => void;
      const promise = new Promise<"released" | SubjectMoveRecord>((r) => (resolve = r));
      state.hold = { promise, resolve };
      const since = Date.now();
      const holder = randomUUID();
      let ended = false;
      let storeHeld = false;
      const release = (): void => {
        if (ended) return;
        ended = true;
        clearTimeout(timer);
        // The writes held here go once the store's hold is gone, or they would only find it
        // there; a release that fails leaves a hold that ends by itself at its time.
        const released = storeHeld ? store.releaseSubjectHold(subjectId, holder).catch(() => undefined) : Promise.resolve();
        void released.then(() => {
          state.hold = undefined;
          resolve("released");
          forget(subjectId, state);
        });
      };
      const timer = setTimeout(release, options.maxHoldMs);
      timer.unref();
      // Every server's writes from here on; another server's switch of the subject refuses this one.
      let taken: "held" | "conflict";
      try {
        taken = await store.holdSubject(subjectId, holder, new Date(since + options.maxHoldMs), new Date(since));
      } catch (error) {
        release();
        throw error;
      }
      if (taken === "conflict") {
        release();
        throw protocolError(Status.FAILED_PRECONDITION, "MIGRATION_CONFLICT", "the subject is being transferred already");
      }
      storeHeld = true;
      // Writes already past the door finish first; what they commit is part of the handover.
      if (state.inFlight > 0) {
        const drained = new Promise<void>((r) => (state.drained = r));
        let drainTimer: NodeJS.Timeout | undefined;
        const timedOut = new Promise<"timeout">((r) => (drainTimer = setTimeout(() => r("timeout"), options.drainTimeoutMs)));
        const outcome = await Promise.race([drained, timedOut]);
        clearTimeout(drainTimer);
        state.drained = undefined;
        if (outcome === "timeout") {
          release();
          throw protocolError(Status.UNAVAILABLE, "SHUTTING_DOWN", "writes in flight did not finish in time; try the switch again");
        }
      }
      return {
        since,
        release,
        async commit(move) {
          if (ended) throw protocolError(Status.FAILED_PRECONDITION, "MIGRATION_CONFLICT", "the hold on the subject ended before the switch committed");
          // Ended first, so the hold's time limit cannot release writes while the move is recorded.
          ended = true;
          clearTimeout(timer);
          let recorded: "recorded" | "lost";
          try {
            recorded = await store.recordHeldSubjectMove(move, holder);
          } catch (error) {
            ended = false;
            release();
            throw error;
          }
          if (recorded === "lost") {
            ended = false;
            release();
            throw protocolError(Status.FAILED_PRECONDITION, "MIGRATION_CONFLICT", "the hold on the subject ended before the switch committed");
          }
          state.hold = undefined;
          resolve(move);
          forget(subjectId, state);
        },
      };
    },
  };
}

