import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { bundleServer } from "../src/runner/server-bundle.js";

const run = promisify(execFile);
let scratch: string | undefined;
afterEach(async () => {
  if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
  scratch = undefined;
});

/** A package with `src/main.ts` importing `src/lib/read.ts`, which reads a file beside itself. */
async function fixture(readSource: string): Promise<string> {
  scratch = await mkdtemp(join(tmpdir(), "server-bundle-"));
  await mkdir(join(scratch, "src", "lib"), { recursive: true });
  await writeFile(join(scratch, "package.json"), JSON.stringify({ name: "fixture", type: "module", dependencies: {} }));
  await writeFile(join(scratch, "src", "lib", "asset.txt"), "beside the source module");
  await writeFile(join(scratch, "src", "lib", "read.ts"), readSource);
  await writeFile(join(scratch, "src", "main.ts"), 'import { read } from "./lib/read.js";\nconsole.log(read());\n');
  return scratch;
}

describe("bundleServer", () => {
  it("bundles into a file elsewhere whose relative import.meta.url URLs still name the files beside their source modules", async () => {
    const dir = await fixture('import { readFileSync } from "node:fs";\nexport const read = (): string => readFileSync(new URL("./asset.txt", import.meta.url), "utf8");\n');
    const outFile = join(dir, "out", "deeper", "main.mjs");
    const command = await bundleServer(join(dir, "src"), outFile, dir);
    expect(command).toBe(`node '${outFile}'`);
    const { stdout } = await run("sh", ["-c", command]);
    expect(stdout.trim()).toBe("beside the source module");
  });

  it("refuses any other use of import.meta, naming the file and line", async () => {
    const dir = await fixture('export const read = (): string => import.meta.dirname;\n');
    await expect(bundleServer(join(dir, "src"), join(dir, "out", "main.mjs"), dir)).rejects.toThrow(/read\.ts:1: only new URL/);
  });
});
