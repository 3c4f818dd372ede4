import type { CallOptions, ClientMiddleware, ClientMiddlewareCall } from "nice-grpc-common";
import { ContinuityError } from "../errors/continuity-error.js";
import type { ContinuityCallOptionsExt } from "../transport/transport.js";

/**
 * Tells the client about every FAILED_PRECONDITION / SUBJECT_MOVED a call meets, before the
 * caller sees it, so the client has switched to the target by the time anyone reacts. The
 * error itself still reaches the caller: requests name the subject, and only the caller can
 * say the call again with the subject's name on the target.
 */
export function createMovedMiddleware(onMoved: (error: ContinuityError) => void): ClientMiddleware<ContinuityCallOptionsExt> {
  return async function* movedMiddleware<Request, Response>(
    call: ClientMiddlewareCall<Request, Response>,
    options: CallOptions & Partial<ContinuityCallOptionsExt>,
  ): AsyncGenerator<Response, Response | void, undefined> {
    try {
      return yield* call.next(call.request, options);
    } catch (error) {
      const failure = ContinuityError.from(error);
      if (failure.reason === "SUBJECT_MOVED") onMoved(failure);
      throw failure;
    }
  };
}
