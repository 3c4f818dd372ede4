import { ClientError, Status, type CallOptions, type ClientMiddleware, type ClientMiddlewareCall } from "nice-grpc-common";
import { RichClientError } from "nice-grpc-error-details";
import { formatWireValue, truncate } from "./wire-format.js";

/** One RPC as it crossed the wire, for `--trace` and failure evidence. */
export interface TraceEntry {
  readonly method: string;
  readonly requests: string[];
  readonly responses: string[];
  status: string;
  errorDetails?: string;
  headers?: string;
  trailers?: string;
}

/** Collects the calls of one case. */
export interface TraceLog {
  readonly entries: TraceEntry[];
}

/** Creates an empty per-case log. */
export function createTraceLog(): TraceLog {
  return { entries: [] };
}

function formatMetadata(metadata: { [Symbol.iterator](): Iterator<[string, unknown[]]> }): string {
  const parts: string[] = [];
  for (const [key, values] of metadata) {
    if (key === "grpc-status-details-bin") continue;
    for (const value of values) parts.push(`${key}: ${typeof value === "string" ? value : formatWireValue(value)}`);
  }
  return parts.join("; ");
}

/**
 * A client middleware that records every request, response, status and trailer of a case's
 * calls. It is always on (cheap) so that a failing case can print its exchange afterwards
 * without rerunning; the authorization header is redacted to its first characters.
 */
export function createTraceMiddleware(log: TraceLog): ClientMiddleware {
  return async function* traceMiddleware<Request, Response>(
    call: ClientMiddlewareCall<Request, Response>,
    options: CallOptions,
  ) {
    const entry: TraceEntry = { method: call.method.path, requests: [], responses: [], status: "pending" };
    log.entries.push(entry);
    const authorization = options.metadata?.get("authorization");
    if (typeof authorization === "string") entry.headers = `authorization: ${authorization.slice(0, 16)}…`;
    const recordedOptions: CallOptions = {
      ...options,
      onHeader(header) {
        const text = formatMetadata(header);
        if (text !== "") entry.headers = `${entry.headers ?? ""}${entry.headers === undefined ? "" : "; "}response ${text}`;
        options.onHeader?.(header);
      },
      onTrailer(trailer) {
        entry.trailers = formatMetadata(trailer);
        options.onTrailer?.(trailer);
      },
    };
    const request = call.requestStream
      ? recordStream(call.request as AsyncIterable<unknown>, entry.requests)
      : (entry.requests.push(truncate(formatWireValue(call.request))), call.request);
    try {
      if (call.responseStream) {
        for await (const response of call.next(request as Request, recordedOptions) as AsyncIterable<Response>) {
          entry.responses.push(truncate(formatWireValue(response)));
          yield response;
        }
        entry.status = "OK";
        return;
      }
      const response = yield* call.next(request as Request, recordedOptions);
      entry.responses.push(truncate(formatWireValue(response)));
      entry.status = "OK";
      return response;
    } catch (error) {
      if (error instanceof ClientError) {
        entry.status = `${Status[error.code]} ${JSON.stringify(error.details)}`;
        if (error instanceof RichClientError) entry.errorDetails = truncate(formatWireValue(error.extra));
      } else {
        entry.status = `client-side ${error instanceof Error ? error.name : "error"}: ${String(error)}`;
      }
      throw error;
    }
  };
}

async function* recordStream(source: AsyncIterable<unknown>, into: string[]): AsyncIterable<unknown> {
  for await (const item of source) {
    into.push(truncate(formatWireValue(item), 400));
    yield item;
  }
}

/** Renders a log as indented text for the console and reports. */
export function formatTrace(log: TraceLog): string {
  return log.entries
    .map((entry, index) => {
      const lines = [`  #${index + 1} ${entry.method}`];
      for (const request of entry.requests) lines.push(`    -> ${request}`);
      if (entry.headers !== undefined) lines.push(`    headers: ${entry.headers}`);
      for (const response of entry.responses) lines.push(`    <- ${response}`);
      lines.push(`    status: ${entry.status}`);
      if (entry.errorDetails !== undefined) lines.push(`    details: ${entry.errorDetails}`);
      if (entry.trailers !== undefined && entry.trailers !== "") lines.push(`    trailers: ${entry.trailers}`);
      return lines.join("\n");
    })
    .join("\n");
}
