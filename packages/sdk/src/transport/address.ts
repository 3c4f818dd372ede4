import { Status } from "nice-grpc-common";
import { ContinuityError } from "../errors/continuity-error.js";

/** A server address as the SDK dials it. */
export interface ServerAddress {
  /** `https` (TLS), `http` (plaintext), or undefined when the address has no scheme. */
  readonly scheme: "https" | "http" | undefined;
  /** `host:port`, as sent in `SUBJECT_MOVED`'s `target`. */
  readonly hostPort: string;
  /** The address as given, for grpc-js. */
  readonly text: string;
}

const ADDRESS = /^(?:(https?):\/\/)?(\[[0-9a-fA-F:.]+\]|[^\s/:[\]]+)(?::([0-9]{1,5}))?\/?$/;

/**
 * Parses the address a client dials, and refuses one that does not say how to secure it.
 *
 * - `https://host[:port]`: TLS (port 443 by default);
 * - `http://host[:port]`: plaintext (port 80 by default);
 * - `host:port` without a scheme: plaintext, accepted only for a loopback host
 *   (`localhost`, `127.x.x.x`, `[::1]`) or when the caller passes channel credentials,
 *   which then decide. Anywhere else it would silently send tokens in the clear, so it is
 *   refused with INVALID_ARGUMENT / `ADDRESS_INSECURE`.
 */
export function parseServerAddress(address: string, hasCredentials: boolean): ServerAddress {
  const match = ADDRESS.exec(address.trim());
  if (match === null) {
    throw new ContinuityError({
      code: Status.INVALID_ARGUMENT,
      reason: "ADDRESS_INVALID",
      message: `"${address}" is not a server address: give https://host[:port], http://host[:port], or host:port`,
    });
  }
  const scheme = match[1] as "https" | "http" | undefined;
  const host = match[2]!;
  const port = match[3] ?? (scheme === "https" ? "443" : scheme === "http" ? "80" : undefined);
  if (port === undefined) {
    throw new ContinuityError({
      code: Status.INVALID_ARGUMENT,
      reason: "ADDRESS_INVALID",
      message: `"${address}" has neither a scheme nor a port: give https://${host} for TLS, or ${host}:<port>`,
    });
  }
  if (scheme === undefined && !hasCredentials && !isLoopback(host)) {
    throw new ContinuityError({
      code: Status.INVALID_ARGUMENT,
      reason: "ADDRESS_INSECURE",
      message: `"${address}" does not say whether to use TLS, and would be dialed in plaintext: write https://${host}:${port} for TLS, or http://${host}:${port} to send tokens unencrypted on purpose`,
    });
  }
  const hostPort = `${host}:${port}`;
  return { scheme, hostPort, text: scheme === undefined ? hostPort : `${scheme}://${hostPort}` };
}

/**
 * The address of a client told to use TLS (`tls`): a bare `host:port` becomes `https://`;
 * `http://` contradicts the option and is refused rather than one of them silently ignored.
 */
export function requireTls(address: ServerAddress): ServerAddress {
  if (address.scheme === "http") {
    throw new ContinuityError({
      code: Status.INVALID_ARGUMENT,
      reason: "ADDRESS_INVALID",
      message: `"${address.text}" says plaintext but the tls option says TLS: write https://${address.hostPort}, or drop tls`,
    });
  }
  return { scheme: "https", hostPort: address.hostPort, text: `https://${address.hostPort}` };
}

/**
 * Where to go after `SUBJECT_MOVED`: the target (`host:port`) with the security of the
 * address the client was using, so a move can never turn TLS into plaintext.
 */
export function movedAddress(current: ServerAddress, target: string, hasCredentials: boolean): ServerAddress {
  if (target.includes("://")) {
    const moved = parseServerAddress(target, hasCredentials);
    if (moved.scheme !== current.scheme) {
      throw new ContinuityError({
        code: Status.FAILED_PRECONDITION,
        reason: "ADDRESS_INSECURE",
        message: `the subject moved to ${target}, which does not keep the security of ${current.text}`,
      });
    }
    return moved;
  }
  // The same rules as for the first address: a bare target is dialed in plaintext only on
  // loopback or with the caller's own credentials.
  return parseServerAddress(current.scheme === undefined ? target : `${current.scheme}://${target}`, hasCredentials);
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "[::1]" || /^127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$/.test(host);
}
