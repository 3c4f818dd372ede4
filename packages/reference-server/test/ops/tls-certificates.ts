import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { generate, type CertificateExtension } from "selfsigned";

/** PEM files of a test CA and what it signed, written at test time (nothing is checked in). */
export interface TestCertificates {
  /** The CA's certificate: clients trust it, and a server given it as client CA accepts what it signed. */
  readonly caFile: string;
  readonly ca: string;
  /** Server certificate for `localhost` and `127.0.0.1`, signed by the CA. */
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  /** A client certificate the CA signed, and one from another, unrelated CA. */
  readonly client: { readonly cert: string; readonly key: string };
  readonly strangerClient: { readonly cert: string; readonly key: string };
}

async function authority(name: string): Promise<{ cert: string; key: string }> {
  const pems = await generate([{ name: "commonName", value: name }], {
    keyType: "ec",
    algorithm: "sha256",
    extensions: [
      { name: "basicConstraints", cA: true, critical: true },
      { name: "keyUsage", keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}

const SERVER_NAMES: CertificateExtension = { name: "subjectAltName", altNames: [{ type: 2, value: "localhost" }, { type: 7, ip: "127.0.0.1" }] };

async function issued(ca: { cert: string; key: string }, name: string, usage: "server" | "client"): Promise<{ cert: string; key: string }> {
  const pems = await generate([{ name: "commonName", value: name }], {
    keyType: "ec",
    algorithm: "sha256",
    ca,
    extensions: [
      { name: "basicConstraints", cA: false },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true },
      { name: "extKeyUsage", serverAuth: usage === "server", clientAuth: usage === "client" },
      ...(usage === "server" ? [SERVER_NAMES] : []),
    ],
  });
  return { cert: pems.cert, key: pems.private };
}

/** Generates a CA, a server certificate and two client certificates into `dir`. */
export async function createTestCertificates(dir: string): Promise<TestCertificates> {
  const ca = await authority("continuity test CA");
  const server = await issued(ca, "localhost", "server");
  const client = await issued(ca, "test client", "client");
  const strangerClient = await issued(await authority("someone else's CA"), "stranger", "client");
  const files = { caFile: join(dir, "ca.pem"), serverCertFile: join(dir, "server.pem"), serverKeyFile: join(dir, "server.key") };
  await writeFile(files.caFile, ca.cert);
  await writeFile(files.serverCertFile, server.cert);
  await writeFile(files.serverKeyFile, server.key, { mode: 0o600 });
  return { ...files, ca: ca.cert, client, strangerClient };
}
