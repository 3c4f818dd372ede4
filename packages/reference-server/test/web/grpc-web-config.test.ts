import { describe, expect, it } from "vitest";
import { ConfigError, parseConfig } from "../../src/config.js";

function parse(argv: string[], env: Record<string, string> = {}) {
  const result = parseConfig(argv, env);
  if (result.kind !== "run") throw new Error("expected a run config");
  return result.config;
}

describe("gRPC-web settings", () => {
  it("are off by default, and read from flags or the environment", () => {
    expect(parse([])).toMatchObject({ grpcWebListen: undefined, corsOrigins: [] });
    expect(parse(["--grpc-web-listen", "127.0.0.1:8080", "--cors-origin", "http://localhost:5173, https://app.example.com"])).toMatchObject({
      grpcWebListen: "127.0.0.1:8080",
      corsOrigins: ["http://localhost:5173", "https://app.example.com"],
    });
    expect(parse([], { CONTINUITY_GRPC_WEB_LISTEN: "[::1]:0", CONTINUITY_CORS_ORIGIN: "*" })).toMatchObject({ grpcWebListen: "[::1]:0", corsOrigins: ["*"] });
  });

  it("refuse an origin with a path or no scheme, naming the flag", () => {
    for (const origin of ["https://app.example.com/", "app.example.com", "https://app.example.com/login"]) {
      expect(() => parseConfig(["--cors-origin", origin], {})).toThrow(ConfigError);
      expect(() => parseConfig(["--cors-origin", origin], {})).toThrow(/--cors-origin \(CONTINUITY_CORS_ORIGIN\)/);
    }
    expect(() => parseConfig(["--grpc-web-listen", "8080"], {})).toThrow(/--grpc-web-listen/);
    // The bridge has no client certificate to present to a gRPC port that requires one.
    expect(() => parseConfig(["--grpc-web-listen", "127.0.0.1:0", "--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-client-ca", "ca.pem"], {})).toThrow(
      /--grpc-web-listen cannot be combined with --tls-client-ca/,
    );
  });
});
