import { describe, expect, it } from "vitest";
import { connectionHint } from "./connection-hints.js";

// What grpc-js 1.14 says for each failure, as seen over real connections (the reference
// server's tls.test.ts dials each case for real); here, that nothing else gets a hint.
const last = (error: string) => `No connection established. Last error: ${error}. Resolution note: `;

describe("connectionHint", () => {
  it("names TLS for a plaintext dial that was closed before HTTP/2, and plaintext for a TLS dial that met it", () => {
    expect(connectionHint(last("Failed to connect (2026-12-01T16:17:48.477Z)"), "db:443", false)).toMatch(/most likely serves TLS — dial https:\/\/db:443/);
    expect(connectionHint(last("Error: 80:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:ssl3_record.c:350:\n"), "db:80", true)).toMatch(
      /does not answer TLS: it most likely serves plaintext — dial http:\/\/db:80/,
    );
  });

  it("says what to pass for an untrusted server certificate and for a refused client certificate", () => {
    expect(connectionHint(last("Error: self-signed certificate"), "db:443", true)).toMatch(/pass the CA that signed it as tls\.ca/);
    expect(connectionHint(last("Error: unable to verify the first certificate"), "db:443", true)).toMatch(/tls\.ca/);
    expect(connectionHint(last("80:error:0A00045C:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:rec_layer_s3.c:1601:SSL alert number 116\n"), "db:443", true)).toMatch(
      /refused the TLS handshake over the client certificate/,
    );
    expect(connectionHint(last("read ECONNRESET (2026-12-01T16:25:27.450Z)"), "db:443", true)).toMatch(/requires a client certificate/);
  });

  it("leaves other failures as grpc-js reported them: a server that is down is not a TLS problem", () => {
    expect(connectionHint(last("Error: connect ECONNREFUSED 127.0.0.1:1"), "127.0.0.1:1", false)).toBeUndefined();
    expect(connectionHint(last("Error: connect ECONNREFUSED 127.0.0.1:1"), "127.0.0.1:1", true)).toBeUndefined();
    expect(connectionHint("Name resolution failed for target dns:nowhere.invalid:80", "nowhere.invalid:80", false)).toBeUndefined();
    expect(connectionHint(last("Error: self-signed certificate"), "db:80", false)).toBeUndefined();
  });
});
