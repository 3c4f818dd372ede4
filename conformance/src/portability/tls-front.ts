import { connect, type Socket } from "node:net";
import { createServer, type TLSSocket } from "node:tls";
import { generate, type CertificateExtension } from "selfsigned";

/** A CA the case has a target trust (CONTINUITY_MIGRATION_CA), and a server certificate it issued. */
export interface SourceCertificates {
  /** PEM of the CA. */
  readonly ca: string;
  /** Issued for DNS `localhost` and IP `127.0.0.1`. */
  readonly server: { readonly cert: string; readonly key: string };
  /** Issued by the same CA for another name only (`source.invalid`). */
  readonly otherName: { readonly cert: string; readonly key: string };
}

type AltNames = Extract<CertificateExtension, { name: "subjectAltName" }>["altNames"];

async function issue(ca: { cert: string; key: string }, altNames: AltNames): Promise<{ cert: string; key: string }> {
  const pems = await generate([{ name: "commonName", value: "continuity migration source" }], {
    keyType: "ec",
    algorithm: "sha256",
    ca,
    extensions: [
      { name: "basicConstraints", cA: false },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true },
      { name: "extKeyUsage", serverAuth: true },
      { name: "subjectAltName", altNames },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}

/** A fresh CA with the certificates of a source on loopback, made in memory (nothing is checked in). */
export async function sourceCertificates(): Promise<SourceCertificates> {
  const pems = await generate([{ name: "commonName", value: "continuity conformance CA" }], {
    keyType: "ec",
    algorithm: "sha256",
    extensions: [
      { name: "basicConstraints", cA: true, critical: true },
      { name: "keyUsage", keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  const ca = { cert: pems.cert, key: pems.private };
  return {
    ca: ca.cert,
    server: await issue(ca, [
      { type: 2, value: "localhost" },
      { type: 7, ip: "127.0.0.1" },
    ]),
    otherName: await issue(ca, [{ type: 2, value: "source.invalid" }]),
  };
}

/** A TLS endpoint on 127.0.0.1 in front of a plaintext HTTP/2 server, noting the server name each client sent. */
export interface TlsFront {
  readonly port: number;
  /** The SNI server name of each TLS connection, or false when the client sent none. */
  readonly serverNames: readonly (string | false)[];
  close(): void;
}

/** Terminates TLS with `certificate` (offering h2) and relays each connection to `upstreamPort` on 127.0.0.1. */
export async function startTlsFront(certificate: { readonly cert: string; readonly key: string }, upstreamPort: number): Promise<TlsFront> {
  const serverNames: (string | false)[] = [];
  const sockets = new Set<Socket>();
  const server = createServer({ cert: certificate.cert, key: certificate.key, ALPNProtocols: ["h2"] }, (socket: TLSSocket) => {
    serverNames.push(socket.servername ?? false);
    const upstream = connect(upstreamPort, "127.0.0.1");
    sockets.add(socket).add(upstream);
    const end = (): void => {
      socket.destroy();
      upstream.destroy();
    };
    socket.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
    socket.pipe(upstream).pipe(socket);
  });
  // A handshake the client gives up on (a certificate it refused) is no error of the front.
  server.on("tlsClientError", () => undefined);
  const port = await new Promise<number>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port));
  });
  return {
    port,
    serverNames,
    close() {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}
