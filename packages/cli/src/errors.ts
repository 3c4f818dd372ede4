import { BundleFramingError, BundleVerificationError } from "@continuity/bundle";
import { ContinuityError, isContinuityError, Status } from "@continuity/sdk";
import { ClientError } from "nice-grpc-common";

/** Exit status of a command that did what it was asked. */
export const EXIT_SUCCESS = 0;
/** Exit status of a refused command line (unknown flag, missing argument). */
export const EXIT_USAGE = 2;
/** Exit status of anything else that went wrong. */
export const EXIT_FAILURE = 1;
/** Exit status after Ctrl-C, as shells report a SIGINT. */
export const EXIT_INTERRUPTED = 130;

/**
 * A failure the user can act on, with the one line to print. Every error a user can cause is
 * turned into one of these at the place that knows what was being done (which file, which
 * server), so the top level never has to guess.
 */
export class CliError extends Error {
  override readonly name = "CliError";
  constructor(
    message: string,
    readonly exitCode: number = EXIT_FAILURE,
    /** Machine-readable facts for `--json` (code, reason, field, record index). */
    readonly facts: Readonly<Record<string, string | number>> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A bundle that is not what it claims to be, rendered with where in the file it broke. */
export function bundleProblem(source: string, error: BundleVerificationError | BundleFramingError, byteOffset?: number): CliError {
  if (error instanceof BundleVerificationError) {
    const at = byteOffset === undefined || error.recordIndex === undefined ? "" : ` (part at byte ${byteOffset})`;
    const facts: Record<string, string | number> = { field: error.field };
    if (error.recordIndex !== undefined) facts["recordIndex"] = error.recordIndex;
    return new CliError(`${source}: ${error.field}: ${error.message}${at}`, EXIT_FAILURE, facts, { cause: error });
  }
  return new CliError(`${source}: ${error.message}`, EXIT_FAILURE, { field: "framing" }, { cause: error });
}

/**
 * One line for a failed call: who refused what, with the canonical code, the ErrorInfo reason
 * and any BadRequest fields, or "cannot reach" when there was no server to refuse.
 */
export function callProblem(what: string, address: string, error: ContinuityError): CliError {
  const code = Status[error.code] ?? String(error.code);
  const facts: Record<string, string | number> = { code };
  if (error.reason !== undefined) facts["reason"] = error.reason;
  // grpc-js ends a connection failure with an empty "Resolution note:"; it says nothing.
  const message = error.message.replace(/\s*Resolution note:\s*$/, "");
  if (error.code === Status.UNAVAILABLE && error.reason === undefined) {
    return new CliError(`cannot reach the server at ${address}: ${message}`, EXIT_FAILURE, facts, { cause: error });
  }
  if (error.code === Status.DEADLINE_EXCEEDED && error.reason === undefined) {
    return new CliError(`the server at ${address} did not answer ${what} in time: ${message}`, EXIT_FAILURE, facts, { cause: error });
  }
  const fields = error.fieldViolations.map((violation) => `${violation.field}: ${violation.description}`);
  if (fields.length > 0) facts["field"] = error.fieldViolations[0]!.field;
  const detail = fields.length > 0 ? ` [${fields.join("; ")}]` : "";
  const reason = error.reason === undefined ? "" : ` ${error.reason}`;
  const movedTo = error.reason === "SUBJECT_MOVED" && error.metadata["target"] !== undefined ? ` (moved to ${error.metadata["target"]})` : "";
  if (movedTo !== "") facts["target"] = error.metadata["target"]!;
  return new CliError(`${address} refused ${what}: ${code}${reason}: ${message}${detail}${movedTo}`, EXIT_FAILURE, facts, { cause: error });
}

/** Wraps a call so that any gRPC failure becomes a {@link callProblem}. */
export async function calling<T>(what: string, address: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw asCallProblem(what, address, error);
  }
}

/** A {@link callProblem} when `error` came from a call; anything else as it is. */
export function asCallProblem(what: string, address: string, error: unknown): unknown {
  if (error instanceof CliError) return error;
  if (isContinuityError(error)) return callProblem(what, address, error);
  // Byte-level calls bypass the SDK client, so their errors arrive as nice-grpc's.
  if (error instanceof ClientError) return callProblem(what, address, ContinuityError.from(error));
  return error;
}

/** The message of a Node system error (ENOENT, EACCES) as a person reads it. */
export function fileProblem(verb: string, path: string, error: unknown): CliError {
  const code = (error as NodeJS.ErrnoException).code;
  const because =
    code === "ENOENT"
      ? "no such file or directory"
      : code === "EACCES" || code === "EPERM"
        ? "permission denied"
        : code === "EEXIST"
          ? "it already exists (pass --force to replace it)"
          : code === "EISDIR"
            ? "it is a directory"
            : (error as Error).message;
  return new CliError(`cannot ${verb} ${path === "-" ? "stdout" : path}: ${because}`, EXIT_FAILURE, code === undefined ? {} : { code }, { cause: error });
}
