import { ServerError, Status } from "nice-grpc";

/** How a call ended, in the terms logs and metrics use. */
export interface CallOutcome {
  /** gRPC status name, e.g. `OK`, `NOT_FOUND`. */
  readonly code: string;
  /** The ErrorInfo reason, when the error carried one. */
  readonly reason: string | undefined;
}

const OK: CallOutcome = { code: "OK", reason: undefined };

interface ErrorInfoLike {
  readonly $type?: unknown;
  readonly reason?: unknown;
}

function reasonOf(error: ServerError): string | undefined {
  // RichServerError keeps its details in `extra`; read it structurally so this module does
  // not depend on which error class a service chose.
  const extra = (error as { extra?: unknown }).extra;
  if (!Array.isArray(extra)) return undefined;
  for (const detail of extra as ErrorInfoLike[]) {
    if (detail?.$type === "google.rpc.ErrorInfo" && typeof detail.reason === "string") return detail.reason;
  }
  return undefined;
}

/**
 * Classifies a call's end. Anything that is not a ServerError reaches the client as
 * UNKNOWN (nice-grpc's behaviour), and is reported so here too — seeing UNKNOWN in metrics
 * means an error escaped the error-mapping middleware.
 */
export function callOutcome(error: unknown): CallOutcome {
  if (error === undefined) return OK;
  if (error instanceof ServerError) {
    return { code: Status[error.code] ?? String(error.code), reason: reasonOf(error) };
  }
  if (error instanceof Error && error.name === "AbortError") return { code: "CANCELLED", reason: undefined };
  return { code: "UNKNOWN", reason: undefined };
}
