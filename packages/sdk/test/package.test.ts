import { execFile } from "node:child_process";
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// `@continuity/sdk` as a platform engineer gets it: built with tsc, packed with `npm pack`,
// installed from the tarball into a fresh project (its dependencies from the npm registry,
// through npm's cache when it has them), then imported by plain Node ESM and type-checked by
// TypeScript with `node16` and `bundler` resolution; publint and arethetypeswrong check the
// tarball's package.json and types. The build happens in a temporary copy, so the worktree
// never holds a `dist` that other tests could pick up by mistake.

const run = promisify(execFile);
const packageDir = join(dirname(fileURLToPath(import.meta.url)), "..");
const repoRoot = join(packageDir, "..", "..");
const tsc = join(repoRoot, "node_modules", "typescript", "bin", "tsc");
const bin = (name: string): string => join(packageDir, "node_modules", ".bin", name);

let stage: string;
let tarball: string;
let packedFiles: string[];
let consumer: string;

async function sh(file: string, args: readonly string[], cwd: string): Promise<string> {
  try {
    const { stdout } = await run(file, args, { cwd, maxBuffer: 32 * 1024 * 1024, env: { ...process.env, npm_config_update_notifier: "false" } });
    return stdout;
  } catch (error) {
    const failure = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${file} ${args.join(" ")} failed in ${cwd}:\n${failure.stdout ?? ""}\n${failure.stderr ?? failure.message}`);
  }
}

beforeAll(async () => {
  stage = await mkdtemp(join(tmpdir(), "continuity-sdk-pack-"));
  const copy = join(stage, "package");
  await mkdir(copy);
  await sh(process.execPath, [tsc, "-p", "tsconfig.build.json", "--outDir", join(copy, "dist")], packageDir);
  for (const file of ["package.json", "README.md", "LICENSE"]) await cp(join(packageDir, file), join(copy, file));
  await cp(join(packageDir, "src"), join(copy, "src"), { recursive: true });
  // The build ran above; `prepack` would build again with pnpm.
  const packed = JSON.parse(await sh("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", stage], copy)) as { filename: string; files: { path: string }[] }[];
  tarball = join(stage, packed[0]!.filename);
  packedFiles = packed[0]!.files.map((file) => file.path);

  consumer = join(stage, "consumer");
  await mkdir(consumer);
  await writeFile(
    join(consumer, "package.json"),
    JSON.stringify({ name: "consumer", private: true, type: "module", dependencies: { "@continuity/sdk": `file:${tarball}`, "@types/node": "^20.19.0" } }),
  );
  await sh("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"], consumer);
}, 240_000);

afterAll(async () => {
  if (stage !== undefined) await rm(stage, { recursive: true, force: true });
});

describe("the packed @continuity/sdk", () => {
  it("holds the built entries, their types, the sources they map to and the license, and no tests", () => {
    for (const entry of ["index", "browser", "gen/index", "protocol/index", "react/index", "platform/index"]) {
      expect(packedFiles).toContain(`dist/${entry}.js`);
      expect(packedFiles).toContain(`dist/${entry}.d.ts`);
    }
    expect(packedFiles).toContain("LICENSE");
    expect(packedFiles).toContain("README.md");
    expect(packedFiles.filter((file) => /(^|\/)test\/|\.test\.|\.spec\./.test(file))).toEqual([]);
    expect(packedFiles.filter((file) => file.startsWith("examples/"))).toEqual([]);
  });

  it("passes publint and arethetypeswrong (ESM only)", async () => {
    await sh(bin("publint"), ["run", tarball, "--strict"], stage);
    await sh(bin("attw"), [tarball, "--profile", "esm-only", "--format", "ascii"], stage);
  }, 120_000);

  it("imports in plain Node ESM, and its platform helper signs an assertion", async () => {
    await writeFile(
      join(consumer, "check.mjs"),
      `
      import * as sdk from "@continuity/sdk";
      import { toHex } from "@continuity/sdk/protocol";
      import { v1 } from "@continuity/sdk";
      import { createAssertionSigner } from "@continuity/sdk/platform";
      import { generateKeyPair, exportJWK } from "jose";
      const client = sdk.createContinuityClient({ address: "127.0.0.1:1", tokenProvider: sdk.createStaticTokenProvider("t") });
      client.close();
      const { privateKey } = await generateKeyPair("ES256", { extractable: true });
      const signer = await createAssertionSigner({ platformId: "acme", privateKey: await exportJWK(privateKey) });
      const parts = (await signer.sign("ana")).split(".");
      console.log(JSON.stringify({
        exports: ["createReplica", "openStream", "createFileQueueStore", "createIndexedDbQueueStore", "toJsonSafe"].filter((name) => typeof sdk[name] === "function"),
        hash: toHex(new Uint8Array([1, 255])),
        enum: typeof v1.DeltaEncoding,
        jws: parts.length,
      }));
      `,
    );
    const output = JSON.parse(await sh(process.execPath, ["check.mjs"], consumer)) as unknown;
    expect(output).toEqual({
      exports: ["createReplica", "openStream", "createFileQueueStore", "createIndexedDbQueueStore", "toJsonSafe"],
      hash: "01ff",
      enum: "object",
      jws: 3,
    });
  }, 60_000);

  it.each([
    // Every declaration file checked once, the SDK's own included, under node16 resolution;
    // bundler resolution checks what resolves and how the app uses it.
    { resolution: "node16", module: "node16", skipLibCheck: false },
    { resolution: "bundler", module: "esnext", skipLibCheck: true },
  ] as const)("type-checks a TypeScript app with moduleResolution $resolution", async ({ resolution, module, skipLibCheck }) => {
    const source = `app-${resolution}.ts`;
    await writeFile(
      join(consumer, source),
      `
      import { createContinuityClient, createReplica, createIndexedDbQueueStore, ContinuityError, toJsonSafe, type JsonStream, type QueueStore, type StreamStatus } from "@continuity/sdk";
      import { createAssertionSigner, type AssertionSigner } from "@continuity/sdk/platform";
      import type { v1 } from "@continuity/sdk";
      // @ts-expect-error The check reads the real declarations: a name they lack is an error.
      import { notExported } from "@continuity/sdk";

      type Course = { lesson?: number };
      export async function start(store: QueueStore): Promise<JsonStream<Course>> {
        const client = createContinuityClient({ address: "https://continuity.example.com", tokenProvider: { getToken: () => Promise.resolve({ token: "t", expiresAt: undefined }) } });
        const replica = await createReplica(client, { store });
        const course = await replica.openStream<Course>({ stream: "course-1", create: { type: "org.example.course-progress" } });
        const status: StreamStatus = course.status;
        const version: string = toJsonSafe(status).confirmedVersion;
        void version;
        return course;
      }
      export const browserStore: QueueStore = createIndexedDbQueueStore({ databaseName: "app" });
      export const isError = (error: unknown): boolean => error instanceof ContinuityError;
      export type Encoding = v1.DeltaEncoding;
      export const signer: Promise<AssertionSigner> = createAssertionSigner({ platformId: "acme", privateKey: { kty: "EC", crv: "P-256", x: "", y: "", d: "" } });
      export const unused = notExported;
      `,
    );
    const config = `tsconfig.${resolution}.json`;
    await writeFile(
      join(consumer, config),
      JSON.stringify({
        compilerOptions: { module, moduleResolution: resolution, target: "es2022", strict: true, noEmit: true, skipLibCheck, types: ["node"] },
        files: [source],
      }),
    );
    await sh(process.execPath, [tsc, "-p", config], consumer);
  }, 120_000);

  it("names the license of the repository", async () => {
    const manifest = JSON.parse(await readFile(join(stage, "package", "package.json"), "utf8")) as { license: string };
    expect(manifest.license).toBe("Apache-2.0");
    expect(await readFile(join(stage, "package", "LICENSE"), "utf8")).toContain("Apache License\n                           Version 2.0, January 2004");
  });
});
