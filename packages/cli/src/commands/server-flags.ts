import { Option, type Command } from "commander";

/** How to reach and sign in to a server, from flags or their environment variables. */
export interface ServerFlags {
  readonly server?: string;
  readonly platformId?: string;
  readonly platformKey?: string;
  readonly account?: string;
}

/**
 * Adds `--server`, `--platform-id`, `--platform-key` and `--account` (or, with prefix
 * `source`, `--source`, `--source-platform-id`, …) with their CONTINUITY_* variables.
 */
export function addServerOptions(command: Command, prefix: "" | "source" = "", whose = prefix === "" ? "the server" : "the source server"): Command {
  const flag = (name: string) => (prefix === "" ? name : `${prefix}-${name}`);
  const env = (name: string) => `CONTINUITY_${flag(name).toUpperCase().replaceAll("-", "_")}`;
  const fallback = (name: string) => (prefix === "" ? "" : ` (default: --${name})`);
  return command
    .addOption(new Option(`--${prefix === "" ? "server" : "source"} <host:port>`, `${whose} (https://host:port for TLS)`).env(prefix === "" ? "CONTINUITY_SERVER" : "CONTINUITY_SOURCE"))
    .addOption(new Option(`--${flag("platform-id")} <id>`, `the platform that signs in to ${whose}${fallback("platform-id")}`).env(env("platform-id")))
    .addOption(new Option(`--${flag("platform-key")} <file>`, `that platform's private JWK, to sign the assertion with${fallback("platform-key")}`).env(env("platform-key")))
    .addOption(new Option(`--${flag("account")} <id>`, `the person's account id on that platform${fallback("account")}`).env(env("account")));
}
