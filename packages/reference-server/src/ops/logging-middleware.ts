import { randomBytes } from "node:crypto";
import type { CallContext, ServerMiddleware, ServerMiddlewareCall } from "nice-grpc-common";
import type { Logger } from "pino";
import { callOutcome } from "./call-outcome.js";

/** Call-context extension: the id every log line of the call carries. */
export interface RequestIdCallContextExt {
  readonly requestId: string;
}

/** Request header a caller (or proxy) may set to correlate logs; echoed in the response header. */
export const REQUEST_ID_HEADER = "x-request-id";

const ACCEPTABLE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/** Options of {@link createLoggingMiddleware}. */
export interface LoggingMiddlewareOptions {
  readonly logger: Logger;
}

/**
 * Logs one structured line per finished call — request id, method, code, reason, duration —
 * and nothing from the request or response bodies or metadata: those carry tokens and
 * people's state, and logs are the place they leak from most often.
 *
 * Attach it outside the auth middleware so refused calls are logged too.
 */
export function createLoggingMiddleware(options: LoggingMiddlewareOptions): ServerMiddleware<RequestIdCallContextExt> {
  const { logger } = options;
  return async function* loggingMiddleware<Request, Response>(
    call: ServerMiddlewareCall<Request, Response, RequestIdCallContextExt>,
    context: CallContext,
  ): AsyncGenerator<Response, Response | void, undefined> {
    const offered = context.metadata.get(REQUEST_ID_HEADER);
    const requestId =
      typeof offered === "string" && ACCEPTABLE_REQUEST_ID.test(offered) ? offered : randomBytes(9).toString("base64url");
    context.header.set(REQUEST_ID_HEADER, requestId);
    const started = process.hrtime.bigint();
    let failure: unknown;
    try {
      return yield* call.next(call.request, { ...context, requestId });
    } catch (error) {
      failure = error;
      throw error;
    } finally {
      const outcome =
        failure === undefined && context.signal.aborted ? { code: "CANCELLED", reason: undefined } : callOutcome(failure);
      const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
      const line = { requestId, method: call.method.path, code: outcome.code, reason: outcome.reason, durationMs };
      if (outcome.code === "INTERNAL" || outcome.code === "UNKNOWN") {
        // The cause is for operators only; the client got a generic message.
        logger.error({ ...line, err: failure }, "call failed");
      } else {
        logger.info(line, "call");
      }
    }
  };
}
