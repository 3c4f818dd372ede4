import { Status, type CallContext, type ServerMiddleware, type ServerMiddlewareCall } from "nice-grpc-common";
import type { AuthCallContextExt } from "../../auth/context.js";
import { protocolError } from "../../errors.js";
import type { Store, SubjectMoveRecord } from "../../store/index.js";

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
 * inside have finished, so that what the switch hands over is everything acknowledged. It
 * lives in this process: the transfer that holds it is a call to this process, and when that
 * call ends without a commit — the target died, the network broke — the hold is released
 * and the writes go ahead here. A hold longer than `maxHoldMs` releases itself.
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

/** Creates the gate over `store`'s record of moves. */
export function createSubjectGate(store: Pick<Store, "getSubjectMove" | "recordSubjectMove">): SubjectGate {
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
      let ended = false;
      const release = (): void => {
        if (ended) return;
        ended = true;
        clearTimeout(timer);
        state.hold = undefined;
        resolve("released");
        forget(subjectId, state);
      };
      const timer = setTimeout(release, options.maxHoldMs);
      timer.unref();
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
          if (ended) throw protocolError(Status.ABORTED, "MIGRATION_CONFLICT", "the hold on the subject ended before the switch committed");
          // Ended first, so the hold's time limit cannot release writes while the move is recorded.
          ended = true;
          clearTimeout(timer);
          try {
            await store.recordSubjectMove(move);
          } catch (error) {
            ended = false;
            release();
            throw error;
          }
          state.hold = undefined;
          resolve(move);
          forget(subjectId, state);
        },
      };
    },
  };
}

