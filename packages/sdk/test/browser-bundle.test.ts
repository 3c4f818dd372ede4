import { build, type BuildResult, type Message } from "esbuild";
import { build as viteBuild, createLogger, defaultClientConditions, type Rollup } from "vite";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";

// What a web app's bundler does with the SDK: esbuild with `platform: "browser"`, or Vite, both
// of which pick the package's `browser` export condition. The bundle must come out with no
// warning and no Node module in it; the Node entry, bundled the same way, must not (so the
// check can fail).

const packageDir = join(dirname(fileURLToPath(import.meta.url)), "..");

async function bundle(contents: string): Promise<BuildResult<{ metafile: true; write: false }> | { errors: Message[] }> {
  try {
    return await build({
      stdin: { contents, resolveDir: packageDir, loader: "ts" },
      bundle: true,
      platform: "browser",
      format: "esm",
      target: "es2022",
      write: false,
      metafile: true,
      logLevel: "silent",
      // Workspace packages resolve to their TypeScript sources, as in every test.
      conditions: ["source"],
    });
  } catch (error) {
    return { errors: (error as { errors: Message[] }).errors };
  }
}

it("bundles @continuity/sdk and @continuity/sdk/react for a browser with no warning and no Node module", async () => {
  const result = await bundle(`
    import { createContinuityClient, createIndexedDbQueueStore, createReplica, createWebTransport, openStream } from "@continuity/sdk";
    import { useStream, useSyncStatus } from "@continuity/sdk/react";
    export { createContinuityClient, createIndexedDbQueueStore, createReplica, createWebTransport, openStream, useStream, useSyncStatus };
  `);
  expect(result.errors).toEqual([]);
  if (!("metafile" in result)) throw new Error("no bundle");
  expect(result.warnings).toEqual([]);
  const inputs = Object.keys(result.metafile.inputs);
  expect(inputs.some((input) => input.endsWith("src/browser.ts"))).toBe(true);
  expect(inputs.filter((input) => /@grpc\/grpc-js|\/nice-grpc\/|file-queue-store|grpc-transport|^node:/.test(input))).toEqual([]);
  const text = result.outputFiles.map((file) => file.text).join("\n");
  expect(text).not.toMatch(/\bBuffer\b/);
  expect(text).not.toMatch(/require\(["'](node:)?(fs|path|http2?|net|crypto|os)["']\)/);
});

it("builds the web demo's app with Vite for the browser with no warning and no Node module", async () => {
  const warnings: string[] = [];
  const logger = createLogger("warn", { allowClearScreen: false });
  logger.warn = (message) => void warnings.push(message);
  logger.warnOnce = (message) => void warnings.push(message);
  const result = await viteBuild({
    root: packageDir,
    configFile: false,
    customLogger: logger,
    logLevel: "warn",
    resolve: { conditions: ["source", ...defaultClientConditions] },
    define: { "process.env.NODE_ENV": JSON.stringify("production") },
    build: {
      write: false,
      minify: false,
      target: "es2022",
      lib: { entry: join(packageDir, "examples/web/app.tsx"), formats: ["es"], fileName: "app" },
      rollupOptions: { onwarn: (warning) => void warnings.push(warning.message) },
    },
  });
  const chunk = (Array.isArray(result) ? result[0]! : (result as Rollup.RollupOutput)).output[0];
  expect(warnings).toEqual([]);
  const modules = Object.keys(chunk.modules);
  expect(modules.some((id) => id.endsWith("src/browser.ts"))).toBe(true);
  expect(modules.filter((id) => /@grpc\/grpc-js|\/nice-grpc\/|file-queue-store|grpc-transport|^node:/.test(id))).toEqual([]);
  // Only a library's comment may name it; no code uses Buffer.
  expect(chunk.code).not.toMatch(/\bBuffer\s*[.(]/);
});

it("the Node entry does not bundle for a browser, so the checks above mean something", async () => {
  const result = await bundle(`export * from "./src/index.ts";`);
  const messages = [...result.errors, ...("warnings" in result ? result.warnings : [])].map((message) => message.text).join("\n");
  expect(messages).toMatch(/node:fs|node:crypto|"http2"|"fs"|"net"/);
});
