// The reference server as one JavaScript file, for the runs that start it many times: the
// deliberate-fault run starts a server per mutant (162 of them in CI), and the whole-suite run
// whose report is their baseline starts the same build, so that a mutant is judged against
// exactly what it was compared with.
//
// Why a bundle: under tsx a server start costs about 2 s of CPU (its loader resolves and
// compiles each of ~150 TypeScript modules through a worker thread), against about 1 s for one
// bundled file, and esbuild writes the bundle in ~0.13 s. On CI's two busy cores that is most of
// a mutant's start. (An earlier try measured 1.3-2.3 s per rebuild and gave it up; esbuild's own
// build of this entry takes ~0.13 s here, with nothing but the rewrite below in JavaScript.)
//
// esbuild is the bundler tsx and vite already run on; what is written here is only the one
// thing it leaves to its caller: `new URL("<relative>", import.meta.url)` names a file next to
// the module that says it, and in a bundle every module's `import.meta.url` is the bundle's.
// Each such URL is made absolute at its source file's place, so the bundle reads the very files
// the sources do (a mutant's copy reads its copy's); any other use of `import.meta` fails the
// build loudly rather than giving a server that differs from its sources.
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { build, type Plugin } from "esbuild";

/** `new URL("<relative path>", import.meta.url)`, the one form of `import.meta` a bundle keeps. */
const RELATIVE_URL = /new URL\(\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')\s*,\s*import\.meta\.url\s*\)/g;

/** Rewrites each module's relative `import.meta.url` URLs to absolute ones; refuses any other `import.meta`. */
const absoluteAssetUrls: Plugin = {
  name: "absolute-asset-urls",
  setup(pluginBuild) {
    pluginBuild.onLoad({ filter: /\.[cm]?[jt]s$/ }, async (args) => {
      // npm packages are left as imports, or are CommonJS that knows nothing of import.meta.
      if (/[\\/]node_modules[\\/]/.test(args.path)) return undefined;
      const source = await readFile(args.path, "utf8");
      if (!source.includes("import.meta")) return undefined;
      const contents = source.replace(RELATIVE_URL, (_, literal: string) => {
        const relative = literal.slice(1, -1);
        return `new URL(${JSON.stringify(new URL(relative, pathToFileURL(args.path)).href)})`;
      });
      const left = contents.indexOf("import.meta");
      if (left !== -1) {
        const line = contents.slice(0, left).split("\n").length;
        throw new Error(`${args.path}:${line}: only new URL("…", import.meta.url) can be bundled; bundle the server some other way or change this use`);
      }
      return { contents, loader: args.path.endsWith("ts") ? "ts" : "js", resolveDir: dirname(args.path) };
    });
  },
};

/**
 * Bundles the server whose entry is `<srcDir>/main.ts` (the server's own `src`, or a mutant's
 * copy of it) into `outFile`, with the npm dependencies of the server package at `packageDir`
 * left as imports (they resolve from `outFile`'s place, which must be inside that package), and
 * returns the shell command that starts it.
 */
export async function bundleServer(srcDir: string, outFile: string, packageDir: string): Promise<string> {
  const manifest = JSON.parse(await readFile(join(packageDir, "package.json"), "utf8")) as { dependencies?: Record<string, string> };
  // Workspace packages are bundled from their sources; the npm ones are loaded as installed.
  const dependencies = Object.entries(manifest.dependencies ?? {}).filter(([, version]) => !version.startsWith("workspace:")).map(([name]) => name);
  await build({
    entryPoints: [join(srcDir, "main.ts")],
    outfile: outFile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    // Workspace packages resolve to their TypeScript sources, as `--conditions=source` makes them.
    conditions: ["source"],
    external: dependencies.flatMap((name) => [name, `${name}/*`]),
    // Names in stack traces and logs as in the sources.
    keepNames: true,
    plugins: [absoluteAssetUrls],
    logLevel: "silent",
  });
  return bundledServerCommand(outFile);
}

/** The shell command that starts a bundle written by {@link bundleServer}. */
export function bundledServerCommand(outFile: string): string {
  return `node '${outFile.replaceAll("'", "'\\''")}'`;
}
