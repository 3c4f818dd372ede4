import { describe, expect, it } from "vitest";
import { ConfigError, parseConfig, type ServerConfig } from "../../src/config.js";

function run(argv: string[], env: Record<string, string> = {}): ServerConfig {
  const result = parseConfig(argv, env);
  if (result.kind !== "run") throw new Error("expected a run config");
  return result.config;
}

function refusal(argv: string[], env: Record<string, string> = {}): string {
  try {
    parseConfig(argv, env);
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  throw new Error("expected a ConfigError");
}

describe("config", () => {
  it("has working defaults", () => {
    expect(run([])).toMatchObject({
      listen: "127.0.0.1:50051",
      dataDir: "./.continuity",
      platformsFile: undefined,
      audience: "continuity",
      store: "sqlite",
      durability: "normal",
      retainDeltas: undefined,
      logLevel: "info",
      metricsListen: undefined,
      accessTokenSeconds: 900,
      signingKeyFile: undefined,
    });
  });

  it("reads the environment the conformance runner sets, and flags win over it", () => {
    const env = {
      CONTINUITY_LISTEN: "127.0.0.1:0",
      CONTINUITY_DATA_DIR: "/tmp/x",
      CONTINUITY_PLATFORMS: "/tmp/p.json",
      CONTINUITY_AUDIENCE: "aud-env",
      CONTINUITY_DURABILITY: "full",
    };
    expect(run([], env)).toMatchObject({
      listen: "127.0.0.1:0",
      dataDir: "/tmp/x",
      platformsFile: "/tmp/p.json",
      audience: "aud-env",
      durability: "full",
    });
    expect(run(["--listen", "[::1]:7000", "--audience=aud-flag"], env)).toMatchObject({ listen: "[::1]:7000", audience: "aud-flag" });
  });

  it("takes sqlite or a PostgreSQL URL as the store", () => {
    expect(run(["--store", "postgres://app@db:5432/continuity?schema=prod"]).store).toBe("postgres://app@db:5432/continuity?schema=prod");
    expect(run([], { CONTINUITY_STORE: "postgresql://db/continuity" }).store).toBe("postgresql://db/continuity");
    expect(run(["--store", "postgres://db/c", "--replicas", "2"]).replicas).toBe(2);
    expect(refusal(["--replicas", "2"])).toMatch(/--replicas \(CONTINUITY_REPLICAS\) above 1 needs --store postgres/);
    expect(refusal(["--store", "mysql://db"])).toMatch(/--store \(CONTINUITY_STORE\): must be sqlite or a postgres:\/\/ URL/);
  });

  it("takes migration source ranges, none by default (PORT-041)", () => {
    expect(run([]).migrationSources).toEqual([]);
    expect(run(["--migration-sources", " 10.0.0.0/8, ::1 ,"]).migrationSources).toEqual(["10.0.0.0/8", "::1"]);
    expect(run([], { CONTINUITY_MIGRATION_SOURCES: "127.0.0.0/8" }).migrationSources).toEqual(["127.0.0.0/8"]);
    expect(refusal(["--migration-sources", "10.0.0.0/8,intranet"])).toMatch(/--migration-sources \(CONTINUITY_MIGRATION_SOURCES\): each entry must be an IP address or a CIDR range/);
    expect(refusal(["--migration-sources", "10.0.0.0/40"])).toMatch(/--migration-sources/);
  });

  it("parses numbers", () => {
    const config = run(["--retain-deltas", "100", "--access-token-seconds", "120", "--metrics-listen", "127.0.0.1:9464"]);
    expect(config).toMatchObject({ retainDeltas: 100, accessTokenSeconds: 120, metricsListen: "127.0.0.1:9464" });
  });

  it.each([
    [["--listen", "localhost"], /--listen \(CONTINUITY_LISTEN\)/],
    [["--listen", "1.2.3.4:70000"], /--listen.*0\.\.65535/],
    [["--durability", "fast"], /--durability \(CONTINUITY_DURABILITY\): must be normal or full/],
    [["--access-token-seconds", "4"], /--access-token-seconds.*at least 5/],
    [["--access-token-seconds", "1e3"], /--access-token-seconds.*whole number/],
    [["--retain-deltas", "-1"], /--retain-deltas/],
    [["--log-level", "loud"], /--log-level/],
    [["--no-such-flag"], /no-such-flag/],
    [["positional"], /positional/],
    // Only a leading `--` is the package manager's separator; anywhere else it still means
    // "positionals follow", and those are refused.
    [["--listen", "127.0.0.1:1", "--", "--help"], /positional/],
    [["--", "--", "--help"], /positional/],
  ])("refuses %j with a message naming the flag", (argv, pattern) => {
    expect(refusal(argv)).toMatch(pattern);
  });

  it("names the env var when the bad value came from the environment", () => {
    expect(refusal([], { CONTINUITY_DURABILITY: "maybe" })).toMatch(/CONTINUITY_DURABILITY.*"maybe"/);
  });

  it("prints help listing every flag with its env var", () => {
    const result = parseConfig(["--help"], {});
    expect(result.kind).toBe("help");
    if (result.kind !== "help") return;
    for (const flag of ["--listen", "--data-dir", "--platforms", "--audience", "--durability", "--retain-deltas",
      "--log-level", "--metrics-listen", "--access-token-seconds", "--signing-key"]) {
      expect(result.text).toContain(flag);
    }
    expect(result.text).toContain("CONTINUITY_PLATFORMS");
  });

  it("accepts the leading `--` that `npm start -- …` and `pnpm start -- …` pass through", () => {
    expect(parseConfig(["--", "--help"], {}).kind).toBe("help");
    expect(run(["--", "--listen", "127.0.0.1:0", "--log-level", "warn"])).toMatchObject({ listen: "127.0.0.1:0", logLevel: "warn" });
  });
});
