import { readFile } from "node:fs/promises";
import { createSecureContext } from "node:tls";
import { ServerCredentials } from "@grpc/grpc-js";
import { ConfigError, type ServerConfig } from "../config.js";

/** What the server serves TLS with, read from the files of `--tls-*`. */
export interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** Client certificates must be signed by one of these CAs; undefined asks for none. */
  readonly clientCa: Buffer | undefined;
}

/**
 * Reads and checks the `--tls-*` files at start, so a wrong path, a PEM that is not one or a
 * key that does not belong to the certificate fails the start with the flag's name, rather
 * than the first client's handshake with an OpenSSL code.
 */
export async function loadTlsMaterial(tls: NonNullable<ServerConfig["tls"]>): Promise<TlsMaterial> {
  const read = async (path: string, flag: string, env: string) => {
    try {
      return await readFile(path);
    } catch (error) {
      throw new ConfigError(`invalid --${flag} (${env}): cannot read ${path}: ${(error as Error).message}`, { cause: error });
    }
  };
  const cert = await read(tls.certFile, "tls-cert", "CONTINUITY_TLS_CERT");
  const key = await read(tls.keyFile, "tls-key", "CONTINUITY_TLS_KEY");
  const clientCa = tls.clientCaFile === undefined ? undefined : await read(tls.clientCaFile, "tls-client-ca", "CONTINUITY_TLS_CLIENT_CA");
  try {
    createSecureContext({ cert, key });
  } catch (error) {
    throw new ConfigError(`invalid --tls-cert / --tls-key: ${(error as Error).message}`, { cause: error });
  }
  if (clientCa !== undefined) {
    try {
      createSecureContext({ ca: clientCa });
    } catch (error) {
      throw new ConfigError(`invalid --tls-client-ca (CONTINUITY_TLS_CLIENT_CA): ${(error as Error).message}`, { cause: error });
    }
    if (!clientCa.toString("utf8").includes("-----BEGIN CERTIFICATE-----")) {
      throw new ConfigError(`invalid --tls-client-ca (CONTINUITY_TLS_CLIENT_CA): ${tls.clientCaFile} holds no PEM certificate`);
    }
  }
  return { cert, key, clientCa };
}

/** grpc-js credentials for {@link TlsMaterial}: a client certificate is required exactly when a client CA is given. */
export function serverCredentials(material: TlsMaterial): ServerCredentials {
  return ServerCredentials.createSsl(material.clientCa ?? null, [{ cert_chain: material.cert, private_key: material.key }], material.clientCa !== undefined);
}
