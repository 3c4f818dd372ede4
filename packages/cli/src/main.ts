/**
 * The `continuity` executable: runs the CLI on the real process. Run from the checkout as
 * `npx --yes pnpm@10.34.8 continuity …`, or as `continuity` where the package is installed.
 */
import { runCli } from "./cli.js";
import type { CliIo } from "./context.js";

// `pnpm continuity` runs in the repository root; file names on the command line mean what they
// mean in the directory the person typed them in.
if (process.env["npm_lifecycle_event"] === "continuity" && process.env["INIT_CWD"] !== undefined) process.chdir(process.env["INIT_CWD"]);

const io: CliIo = {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  onInterrupt(handler) {
    process.on("SIGINT", handler);
    process.on("SIGTERM", handler);
    return () => {
      process.off("SIGINT", handler);
      process.off("SIGTERM", handler);
    };
  },
};

process.exitCode = await runCli(process.argv.slice(2), io);
