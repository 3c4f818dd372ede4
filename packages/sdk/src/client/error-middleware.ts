import type { CallOptions, ClientMiddleware, ClientMiddlewareCall } from "nice-grpc-common";
import { ContinuityError } from "../errors/continuity-error.js";
import type { ContinuityCallOptionsExt } from "../transport/transport.js";

/**
 * The outermost middleware: whatever a call throws leaves the SDK as a `ContinuityError`,
 * so callers handle one error type with `code` and `reason`.
 */
export const errorMiddleware: ClientMiddleware<ContinuityCallOptionsExt> = async function* errorMiddleware<Request, Response>(
  call: ClientMiddlewareCall<Request, Response>,
  options: CallOptions & Partial<ContinuityCallOptionsExt>,
): AsyncGenerator<Response, Response | void, undefined> {
  try {
    return yield* call.next(call.request, options);
  } catch (error) {
    throw ContinuityError.from(error);
  }
};
