// The server runs from built JavaScript, installed on its own like a service: `pnpm build`
// compiles it (and the SDK and bundle packages it uses) to dist/, `pnpm deploy --prod` copies
// it with its production dependencies only (no tsx, no TypeScript) to a folder outside the
// workspace, and plain `node` starts its `bin` there and answers real calls.
import { execFile, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { SignJWT, importJWK, type JWK } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAssertionTokenProvider, createContinuityClient } from "@continuity/sdk";
import { continuity } from "@continuity/sdk/gen";
import { PACKAGE_DIR } from "./server-process.js";

const v1 = continuity.v1;
const run = promisify(execFile);
const REPO_ROOT = join(PACKAGE_DIR, "..", "..");
const PNPM = ["--yes", "pnpm@10.34.8"];

let scratch: string;
let installed: string;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "continuity-built-"));
  installed = join(scratch, "continuity-server");
  await run("npx", [...PNPM, "run", "build"], { cwd: REPO_ROOT, maxBuffer: 16 * 1024 * 1024 });
  await run("npx", [...PNPM, "--filter", "@continuity/reference-server", "deploy", "--legacy", "--prod", installed], { cwd: REPO_ROOT, maxBuffer: 16 * 1024 * 1024 });
}, 300_000);

afterAll(async () => {
  if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
});

describe("the built server", () => {
  it("is installed with production dependencies only: no tsx, no TypeScript, a bin that is a Node script", async () => {
    const manifest = JSON.parse(await readFile(join(installed, "package.json"), "utf8")) as { bin: Record<string, string> };
    expect(manifest.bin).toEqual({ "continuity-server": "./dist/main.js" });
    expect((await readFile(join(installed, "dist", "main.js"), "utf8")).startsWith("#!/usr/bin/env node\n")).toBe(true);
    for (const devOnly of ["tsx", "typescript", "vitest"]) {
      await expect(stat(join(installed, "node_modules", devOnly)), devOnly).rejects.toThrow(/ENOENT/);
    }
  });

  it("starts from dist/main.js with plain node, outside the workspace, and serves a signed-in append", async () => {
    const dataDir = join(scratch, "data");
    // No loader, no `source` condition, no NODE_OPTIONS: Node alone cannot run a .ts file, so
    // any TypeScript left on the path would fail the start.
    const env = { ...process.env, NODE_OPTIONS: "" };
    const child = spawn(process.execPath, [join(installed, "dist", "main.js"), "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--log-level", "warn"], {
      cwd: scratch,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (text: string) => (stderr += text));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      const address = await new Promise<string>((resolve, reject) => {
        let stdout = "";
        child.stdout.setEncoding("utf8").on("data", (text: string) => {
          stdout += text;
          const match = /^CONTINUITY_LISTENING=(\S+)$/m.exec(stdout);
          if (match?.[1] !== undefined) resolve(match[1]);
        });
        void exited.then((code) => reject(new Error(`the built server exited (${code}) before it was ready:\n${stderr}`)));
      });

      const client = createContinuityClient({
        address,
        deadlineMs: 5_000,
        tokenProvider: createAssertionTokenProvider({
          deviceId: "service-check",
          async getAssertion() {
            const jwk = JSON.parse(await readFile(join(dataDir, "dev-platforms", "demo-a.private.jwk"), "utf8")) as JWK;
            const now = Math.floor(Date.now() / 1000);
            return new SignJWT({ iss: "demo-a", aud: "continuity", sub: "ops", iat: now, exp: now + 60, jti: randomUUID() })
              .setProtectedHeader({ alg: "ES256", typ: "continuity-assertion+jwt", kid: jwk.kid ?? "" })
              .sign(await importJWK(jwk, "ES256"));
          },
        }),
      });
      try {
        const { subject } = await client.session();
        const { stream } = await client.streams.createStream({
          parent: subject,
          streamId: "",
          stream: { type: "org.example.service", encoding: v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH, conflictPolicy: v1.ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND },
        });
        const appended = await client.streams.appendDeltas({ stream: stream!.name, deltas: [{ payload: Buffer.from('{"built":true}') }], clientSequence: 1n });
        expect(appended.headVersion).toBe(1n);
        const { deltas } = await client.streams.listDeltas({ stream: stream!.name, afterVersion: 0n, pageSize: 10, pageToken: "" });
        expect(deltas.map((delta) => JSON.parse(Buffer.from(delta.payload).toString("utf8")) as unknown)).toEqual([{ built: true }]);
      } finally {
        client.close();
      }
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
  });
});
