/** The inputs several commands share: the keys a signature is checked with, and age identities. */
import type { JSONWebKeySet } from "jose";
import { parseJwks, readJwksFile } from "../bundle-check.js";
import type { CliIo } from "../context.js";
import { CliError, EXIT_USAGE } from "../errors.js";
import { readIdentities } from "../file/age-keys.js";
import { openBundleFile, type BundleInput } from "../file/bundle-file.js";
import { connectToServer } from "../net/server-session.js";

/** Where a bundle's signature is checked against: a JWKS file, or a server's published keys. */
export interface TrustedKeyFlags {
  readonly jwks?: string | undefined;
  readonly server?: string | undefined;
}

/** The keys to check a signature with, and a phrase naming where they came from. */
export interface TrustedKeys {
  readonly jwks: JSONWebKeySet | undefined;
  readonly source: string | undefined;
}

/** Loads `--jwks FILE`, or fetches GetServerInfo.bundle_signing_jwks of `--server ADDRESS`. */
export async function trustedKeys(flags: TrustedKeyFlags): Promise<TrustedKeys> {
  if (flags.jwks !== undefined && flags.server !== undefined) throw new CliError("give --jwks or --server, not both", EXIT_USAGE);
  if (flags.jwks !== undefined) return { jwks: await readJwksFile(flags.jwks), source: `the keys in ${flags.jwks}` };
  if (flags.server === undefined) return { jwks: undefined, source: undefined };
  const server = await connectToServer(flags.server);
  try {
    const published = server.info.bundleSigningJwks;
    const source = `the keys the server at ${flags.server} publishes`;
    if (published === "") throw new CliError(`the server at ${flags.server} publishes no bundle signing keys (ServerInfo.bundle_signing_jwks is empty: it does not claim portability)`);
    return { jwks: parseJwks(published, `ServerInfo.bundle_signing_jwks of ${flags.server}`), source };
  } finally {
    server.close();
  }
}

/** Opens a bundle file (or `-`) with the identities of `--identity` files. */
export async function openInput(path: string, identityFiles: readonly string[] | undefined, io: CliIo): Promise<BundleInput> {
  if (path === "-" && io.stdin.isTTY === true) throw new CliError("refusing to read a bundle from the terminal: give a file, or pipe one into stdin", EXIT_USAGE);
  const files = identityFiles ?? [];
  const identities: string[] = [];
  for (const file of files) identities.push(...(await readIdentities(file)));
  return openBundleFile(path, { identities, identitySource: files.join(", "), stdin: io.stdin });
}
