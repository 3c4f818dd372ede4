import { readFile } from "node:fs/promises";
import { credentials as grpcCredentials, type ChannelCredentials } from "@grpc/grpc-js";

/** How the suite dials the server under test: plaintext, or TLS trusting `ca` (else the system's roots). */
export interface TransportSecurity {
  readonly tls: boolean;
  /** PEM CA certificate(s) to trust instead of the system's roots. */
  readonly ca: Buffer | undefined;
}

/** Plaintext HTTP/2, the default. */
export const PLAINTEXT: TransportSecurity = { tls: false, ca: undefined };

/** Fresh channel credentials for `security` (grpc-js credentials are not shared between channels). */
export function channelCredentials(security: TransportSecurity): ChannelCredentials {
  return security.tls ? grpcCredentials.createSsl(security.ca ?? null) : grpcCredentials.createInsecure();
}

/** What a case or helper needs to open its own channel to the server. */
export interface Dialer {
  /** host:port of the server right now. */
  address(): string;
  /** Credentials for a new channel to it. */
  credentials(): ChannelCredentials;
}

/**
 * Reads `--target`, `--tls` and `--ca`: `https://host:port` or `--tls` dial with TLS, `--ca`
 * (which implies TLS) trusts that CA; `http://host:port` and a bare `host:port` are plaintext
 * unless `--tls` or `--ca` says otherwise. `http://` together with either is a contradiction.
 */
export async function parseTargetSecurity(
  target: string | undefined,
  options: { readonly tls: boolean; readonly caFile: string | undefined },
): Promise<{ readonly target: string | undefined; readonly security: TransportSecurity }> {
  const scheme = target === undefined ? undefined : /^(https?):\/\//.exec(target)?.[1];
  const wantsTls = options.tls || options.caFile !== undefined;
  if (scheme === "http" && wantsTls) throw new Error(`--target ${target} says plaintext, but --tls/--ca say TLS`);
  const tls = scheme === "https" || wantsTls;
  const ca = options.caFile === undefined ? undefined : await readFile(options.caFile);
  const address = target === undefined ? undefined : target.replace(/^https?:\/\//, "").replace(/\/$/, "");
  return { target: address, security: { tls, ca } };
}
