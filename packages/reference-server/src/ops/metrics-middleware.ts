import type { CallContext, ServerMiddleware, ServerMiddlewareCall } from "nice-grpc-common";
import { callOutcome } from "./call-outcome.js";
import type { ServerMetrics } from "./metrics.js";

/**
 * Records every call's duration by method and status, and failures by ErrorInfo reason.
 * Streaming calls are timed until they end, so Subscribe latencies measure connection
 * lifetimes — read them by method.
 */
export function createMetricsMiddleware(metrics: ServerMetrics): ServerMiddleware {
  return async function* metricsMiddleware<Request, Response>(
    call: ServerMiddlewareCall<Request, Response>,
    context: CallContext,
  ): AsyncGenerator<Response, Response | void, undefined> {
    const started = process.hrtime.bigint();
    let failure: unknown;
    try {
      return yield* call.next(call.request, context);
    } catch (error) {
      failure = error;
      throw error;
    } finally {
      const outcome =
        failure === undefined && context.signal.aborted ? { code: "CANCELLED", reason: undefined } : callOutcome(failure);
      metrics.recordRpc(call.method.path, outcome.code, outcome.reason, Number(process.hrtime.bigint() - started) / 1e9);
    }
  };
}
