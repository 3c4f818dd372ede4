/**
 * The `continuity` command line: commander parses it, each command lives in its own file, and
 * every failure a user can cause ends here as one line (or one JSON document under `--json`)
 * and a non-zero exit status.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import packageJson from "../package.json" with { type: "json" };
import { exportCommand } from "./commands/export.js";
import { importCommand } from "./commands/import.js";
import { inspectCommand } from "./commands/inspect.js";
import { keygenCommand } from "./commands/keygen.js";
import { migrateCommand } from "./commands/migrate.js";
import { addServerOptions } from "./commands/server-flags.js";
import { verifyCommand } from "./commands/verify.js";
import type { CliIo } from "./context.js";
import { CliError, EXIT_FAILURE, EXIT_SUCCESS, EXIT_USAGE } from "./errors.js";
import { toJsonText } from "./ui/format.js";

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

const seconds = (value: string): number => {
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0) throw new InvalidArgumentError("must be a positive number of seconds");
  return parsed;
};

const identityOption = () => new Option("-i, --identity <file>", "age identity file to decrypt with (repeatable)").env("CONTINUITY_IDENTITY").argParser(collect);
const jwksOption = () => new Option("--jwks <file>", "check the signature with the keys of this JWKS file");

/** Runs the CLI on `argv` (without `node` and the script) and returns the exit status. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let exitCode = EXIT_SUCCESS;
  let command = "";
  let stdoutTaken = false;
  const run =
    <A extends unknown[]>(action: (...args: A) => Promise<number | void>) =>
    async (...args: A): Promise<void> => {
      const self = args.at(-1) as Command;
      command = self.name();
      const result = await action(...args);
      if (typeof result === "number") exitCode = result;
    };

  const program = new Command("continuity")
    .description("Export, import, verify and inspect Continuity bundles, and move a subject live between servers.")
    .version(packageJson.version)
    .option("--json", "print the result as one JSON document (for scripts); no progress")
    .option("-q, --quiet", "no progress and no result text; errors only")
    .configureHelp({ showGlobalOptions: true })
    .showHelpAfterError("(run with --help for usage)")
    .showSuggestionAfterError()
    .exitOverride()
    .configureOutput({ writeOut: (text) => io.stdout.write(text), writeErr: (text) => io.stderr.write(text) });

  addServerOptions(
    program
      .command("export")
      .description("write the signed-in account's whole subject to a bundle file")
      .option("-o, --output <file>", "where to write: a file, or - for stdout (default: <subject>.cbundle[.gz][.age])")
      .option("-z, --gzip", "compress the file with gzip")
      .addOption(new Option("-r, --encrypt-to <recipient>", "encrypt to an age recipient (age1…), or to the recipients in a file (repeatable)").argParser(collect))
      .option("-f, --force", "replace the output file if it exists"),
  ).action(
    run(async (_options: object, self: Command) => {
      const flags = self.optsWithGlobals();
      stdoutTaken = flags["output"] === "-";
      await exportCommand(flags, io);
    }),
  );

  addServerOptions(
    program
      .command("import")
      .description("send a bundle file (or - for stdin) into the signed-in account's subject")
      .argument("<file>", "the bundle: .cbundle, gzip or age, or - for stdin")
      .addOption(identityOption())
      .addOption(new Option("--jwks <file>", "refuse the bundle unless its signature verifies with a key of this JWKS file")),
  ).action(run(async (file: string, _options: object, self: Command) => importCommand(file, self.optsWithGlobals(), io)));

  program
    .command("verify")
    .description("check a bundle file offline: framing, record digest, every hash chain and, given keys, the signature")
    .argument("<file>", "the bundle: .cbundle, gzip or age, or - for stdin")
    .addOption(identityOption())
    .addOption(jwksOption())
    .option("--server <host:port>", "check the signature with the keys this server publishes (GetServerInfo)")
    .action(run(async (file: string, _options: object, self: Command) => verifyCommand(file, self.optsWithGlobals(), io)));

  program
    .command("inspect")
    .description("show a bundle's manifest, a summary per stream and what else it carries")
    .argument("<file>", "the bundle: .cbundle, gzip or age, or - for stdin")
    .addOption(identityOption())
    .addOption(jwksOption())
    .option("--server <host:port>", "also check the signature with the keys this server publishes")
    .action(run(async (file: string, _options: object, self: Command) => inspectCommand(file, self.optsWithGlobals(), io)));

  const migrate = program
    .command("migrate")
    .description("move the subject live from --source to --server (the target), and follow the migration to its end");
  addServerOptions(migrate, "", "the target server");
  addServerOptions(migrate, "source")
    .option("--follow <migration>", "follow a migration already started (subjects/…/migrations/…)")
    .option("--cancel <migration>", "cancel a migration that has not switched yet")
    .addOption(new Option("--on-interrupt <action>", "what Ctrl-C does while following").choices(["ask", "cancel", "detach"]).default("ask"))
    .addOption(new Option("--poll-interval <seconds>", "time between two progress checks").argParser(seconds).default(0.5))
    .action(run(async (_options: object, self: Command) => migrateCommand(self.optsWithGlobals(), io)));

  program
    .command("keygen")
    .description("write a new age identity file and print its recipient (the key to --encrypt-to)")
    .option("-o, --output <file>", "where to write the identity (default: stdout)")
    .option("--post-quantum", "a hybrid post-quantum identity (age1pq1…)")
    .option("-y, --recipient-of <file>", "print the recipients of an existing identity file instead")
    .action(run(async (_options: object, self: Command) => keygenCommand(self.optsWithGlobals(), io)));

  try {
    await program.parseAsync([...argv], { from: "user" });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.code === "commander.helpDisplayed" || error.code === "commander.version" || error.code === "commander.help" ? EXIT_SUCCESS : EXIT_USAGE;
    }
    const json = argv.includes("--json");
    const problem = error instanceof CliError ? error : new CliError(`unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`, EXIT_FAILURE);
    const prefix = command === "" ? "continuity" : `continuity ${command}`;
    if (json) (stdoutTaken ? io.stderr : io.stdout).write(`${toJsonText({ ok: false, error: { message: problem.message, ...problem.facts } })}\n`);
    else io.stderr.write(`${prefix}: ${problem.message}\n`);
    return problem.exitCode;
  }
}
