#!/usr/bin/env node
// The CLI runs from its TypeScript sources, as the reference server does: this starts Node
// with tsx and the `source` export condition (so workspace packages resolve to their sources)
// and passes the exit status through. Ctrl-C reaches the child from the terminal directly;
// a SIGTERM sent to this process alone is handed on.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { constants } from "node:os";

const main = fileURLToPath(new URL("../src/main.ts", import.meta.url));
const child = spawn(process.execPath, ["--conditions=source", "--import", import.meta.resolve("tsx"), main, ...process.argv.slice(2)], { stdio: "inherit" });
process.on("SIGINT", () => {});
process.on("SIGTERM", () => child.kill("SIGTERM"));
child.on("exit", (code, signal) => {
  process.exit(code ?? 128 + (signal === null ? 0 : (constants.signals[signal] ?? 0)));
});
