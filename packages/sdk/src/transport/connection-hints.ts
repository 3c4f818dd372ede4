import { ClientError, Status, type CallOptions, type ClientMiddleware, type ClientMiddlewareCall } from "nice-grpc-common";
import type { ContinuityCallOptionsExt } from "./transport.js";

// grpc-js reports every failed connection as UNAVAILABLE "No connection established. Last
// error: …", with OpenSSL's words or a bare "Failed to connect" as the last error. For the
// mistakes people make when they set up TLS, those words are far from the fix; each pattern
// below is what grpc-js says for one of them (checked by tests over real connections).

/**
 * The connection closed before HTTP/2 began. In plaintext: what a TLS port does. Over TLS 1.3,
 * where the client finishes its handshake before the server has checked the client
 * certificate: what a server that refuses that certificate does.
 */
const CLOSED_BEFORE_HTTP2 = /Last error: (?:Error: )?(?:Failed to connect\b|read ECONNRESET)/;
/** TLS dialled a port that answered plaintext. */
const PLAINTEXT_ANSWER = /wrong version number|packet length too long|http request|unknown protocol/i;
/** The server's certificate chain did not verify against the trusted roots. */
const UNTRUSTED_CERTIFICATE = /self[- ]signed certificate|unable to verify the first certificate|unable to get (local )?issuer certificate|certificate has expired|certificate is not yet valid/i;
/** The server's certificate does not name the host dialled. */
const WRONG_NAME = /Hostname\/IP does not match|does not match certificate's altnames/i;
/** The server ended the handshake over the client's certificate (none, or one it does not trust). */
const CLIENT_CERTIFICATE_REFUSED = /certificate required|unknown ca|bad certificate|certificate unknown|alert handshake failure/i;

/**
 * Says why a connection most likely failed, in terms of the SDK's options, or undefined when
 * grpc-js's own words are all there is to say. `hostPort` is the address dialled, `tls`
 * whether it was dialled with TLS.
 */
export function connectionHint(details: string, hostPort: string, tls: boolean): string | undefined {
  if (!tls && CLOSED_BEFORE_HTTP2.test(details)) {
    return `${hostPort} closed the connection before answering HTTP/2 in plaintext: it most likely serves TLS — dial https://${hostPort} (with tls.ca for a self-signed certificate); a server at its connection limit does the same`;
  }
  if (!tls) return undefined;
  if (CLOSED_BEFORE_HTTP2.test(details)) {
    return `${hostPort} closed the connection right after the TLS handshake: it most likely requires a client certificate signed by a CA it trusts — pass tls.certificate and tls.privateKey; a server at its connection limit does the same`;
  }
  if (PLAINTEXT_ANSWER.test(details)) {
    return `${hostPort} does not answer TLS: it most likely serves plaintext — dial http://${hostPort}, or check the port`;
  }
  if (UNTRUSTED_CERTIFICATE.test(details)) {
    return `the certificate of ${hostPort} is not trusted: for a private or self-signed certificate, pass the CA that signed it as tls.ca`;
  }
  if (WRONG_NAME.test(details)) {
    return `the certificate of ${hostPort} is not issued for that host: dial the name the certificate was issued for`;
  }
  if (CLIENT_CERTIFICATE_REFUSED.test(details)) {
    return `${hostPort} refused the TLS handshake over the client certificate: it requires one signed by a CA it trusts — pass tls.certificate and tls.privateKey`;
  }
  return undefined;
}

/**
 * The innermost middleware of the gRPC transport: an UNAVAILABLE that {@link connectionHint}
 * can explain leaves with the explanation first and grpc-js's words after it, and stays a
 * `ClientError` with the same code, so retries and callers see what they saw before.
 */
export function createConnectionHintMiddleware(hostPort: string, tls: boolean): ClientMiddleware<ContinuityCallOptionsExt> {
  return async function* connectionHintMiddleware<Request, Response>(
    call: ClientMiddlewareCall<Request, Response>,
    options: CallOptions & Partial<ContinuityCallOptionsExt>,
  ): AsyncGenerator<Response, Response | void, undefined> {
    try {
      return yield* call.next(call.request, options);
    } catch (error) {
      if (!(error instanceof ClientError) || error.code !== Status.UNAVAILABLE) throw error;
      const hint = connectionHint(error.details, hostPort, tls);
      if (hint === undefined) throw error;
      throw new ClientError(error.path, error.code, `${hint} (${error.details.trim()})`);
    }
  };
}
