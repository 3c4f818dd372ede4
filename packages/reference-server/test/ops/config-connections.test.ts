import { describe, expect, it } from "vitest";
import { ConfigError, helpText, parseConfig, type ServerConfig } from "../../src/config.js";

function run(argv: string[], env: Record<string, string> = {}): ServerConfig {
  const result = parseConfig(argv, env);
  if (result.kind !== "run") throw new Error("expected a run config");
  return result.config;
}

describe("config: connection limits", () => {
  it("has defaults, reads the environment, and flags win", () => {
    expect(run([])).toMatchObject({ maxConnections: 1000, maxStreamsPerConnection: 1000, idleConnectionSeconds: 300, handshakeSeconds: 10 });
    const env = {
      CONTINUITY_MAX_CONNECTIONS: "64",
      CONTINUITY_MAX_STREAMS_PER_CONNECTION: "200",
      CONTINUITY_IDLE_CONNECTION_SECONDS: "30",
      CONTINUITY_HANDSHAKE_SECONDS: "2",
    };
    expect(run([], env)).toMatchObject({ maxConnections: 64, maxStreamsPerConnection: 200, idleConnectionSeconds: 30, handshakeSeconds: 2 });
    expect(run(["--max-connections", "8", "--handshake-seconds=5"], env)).toMatchObject({ maxConnections: 8, handshakeSeconds: 5 });
  });

  it.each([
    [["--max-connections", "0"], /--max-connections \(CONTINUITY_MAX_CONNECTIONS\): must be at least 1/],
    [["--max-streams-per-connection", "99"], /--max-streams-per-connection.*at least 100/],
    [["--idle-connection-seconds", "86401"], /--idle-connection-seconds.*at most 86400/],
    [["--handshake-seconds", "1.5"], /--handshake-seconds.*whole number/],
  ])("refuses %j", (argv, pattern) => {
    expect(() => parseConfig(argv, {})).toThrow(ConfigError);
    expect(() => parseConfig(argv, {})).toThrow(pattern);
  });

  it("lists them in --help", () => {
    for (const text of ["--max-connections <n>", "CONTINUITY_MAX_STREAMS_PER_CONNECTION", "--idle-connection-seconds <s>", "--handshake-seconds <s>"]) {
      expect(helpText()).toContain(text);
    }
  });
});
