/**
 * `pnpm demo:web`: the handoff story of `pnpm demo` in a browser. Open the two printed URLs in
 * two tabs — Ana's laptop (platform course-a) and Ana's phone (platform course-b) — and:
 *
 * 1. complete lessons on the laptop;
 * 2. link the phone with the code the laptop shows (the learner's consent);
 * 3. take the laptop offline (devtools → Network → Offline) and keep watching: the writes show
 *    at once and wait in the tab's local store; reload the tab, they are still there;
 * 4. go back online: the queue flushes, exactly once (the server history lists every client
 *    sequence once);
 * 5. hand off to the phone, accept there, and carry on from the same position.
 *
 * Runs a real reference server (a child process, temporary data directory) with its gRPC-web
 * port and CORS for this page's origin, bundles `app.tsx` with esbuild for the browser entry of
 * the SDK, and serves it with a service worker that keeps the page loadable offline. The
 * `/assertion` endpoint plays the platforms' backends: it signs assertions with their keys,
 * which never reach the browser.
 */
import { build } from "esbuild";
import { randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createDemoPlatforms, type DemoPlatform, type DemoPlatforms } from "../support/demo-server.js";
import { spawnReferenceServer } from "../support/reference-server-process.js";

const HERE = dirname(fileURLToPath(import.meta.url));

/** A running web demo. */
export interface WebDemo {
  /** The page's origin, e.g. `http://127.0.0.1:5174`; add `/?device=laptop` or `/?device=phone`. */
  readonly url: string;
  /** `host:port` of the reference server's gRPC port (for tools and tests). */
  readonly grpcAddress: string;
  /** `host:port` of its gRPC-web port, which the page calls. */
  readonly grpcWebAddress: string;
  /** The demo's platforms and their signing keys. */
  readonly platforms: DemoPlatforms;
  /** Stops the page server and the reference server and deletes their files. */
  close(): Promise<void>;
}

/** Starts the page server on `host:port` (default 127.0.0.1, a free port) and a reference server behind it. */
export async function startWebDemo(options: { readonly host?: string; readonly port?: number } = {}): Promise<WebDemo> {
  const host = options.host ?? "127.0.0.1";
  const [app, html, worker] = await Promise.all([bundleApp(), readFile(join(HERE, "index.html"), "utf8"), readFile(join(HERE, "sw.js"), "utf8")]);
  let config = "{}";
  let platforms: DemoPlatforms | undefined;
  const files: Record<string, { type: string; body: string }> = {
    "/": { type: "text/html; charset=utf-8", body: html },
    "/app.js": { type: "text/javascript; charset=utf-8", body: app },
    "/sw.js": { type: "text/javascript; charset=utf-8", body: worker },
  };
  const page = createServer((req, res) => void answer(req, res));
  async function answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://demo");
    if (url.pathname === "/config.json") return send(res, 200, "application/json", config);
    if (url.pathname === "/assertion" && platforms !== undefined) {
      // Stands in for each platform's backend, which would sign only for its signed-in user.
      const platform = url.searchParams.get("platform");
      const account = url.searchParams.get("account");
      if ((platform !== "course-a" && platform !== "course-b") || account === null || account === "") return send(res, 400, "text/plain", "platform and account required\n");
      return send(res, 200, "text/plain", await platforms.assert(platform as DemoPlatform, account));
    }
    if (url.pathname === "/favicon.ico") return send(res, 204, "image/x-icon", "");
    const file = files[url.pathname];
    if (file === undefined) return send(res, 404, "text/plain", "not found\n");
    return send(res, 200, file.type, file.body);
  }
  await new Promise<void>((resolve, reject) => {
    page.once("error", reject);
    page.listen(options.port ?? 0, host, () => resolve());
  });
  const port = (page.address() as AddressInfo).port;
  const url = `http://${host}:${port}`;
  const dataDir = await mkdtemp(join(tmpdir(), "continuity-web-demo-"));
  try {
    platforms = await createDemoPlatforms();
    const server = await spawnReferenceServer({
      dataDir,
      platformsFile: platforms.platformsFile,
      grpcWebPort: 0,
      corsOrigins: [url, `http://localhost:${port}`],
    });
    const grpcWebAddress = server.grpcWebAddress!;
    // A run id, so that tabs left open from an earlier run (another server, another data
    // directory) start afresh instead of resuming queues and cursors that server never knew.
    config = JSON.stringify({ grpcWeb: `http://${grpcWebAddress}`, run: randomUUID() });
    const demoPlatforms = platforms;
    return {
      url,
      grpcAddress: server.address,
      grpcWebAddress,
      platforms: demoPlatforms,
      async close() {
        page.closeAllConnections();
        await new Promise((resolve) => page.close(resolve));
        await server.stop();
        await rm(dataDir, { recursive: true, force: true });
        await demoPlatforms.close();
      },
    };
  } catch (error) {
    page.close();
    await rm(dataDir, { recursive: true, force: true });
    await platforms?.close();
    throw error;
  }
}

/** The page's script: `app.tsx` and the SDK's browser entry, bundled as a web app's build would. */
async function bundleApp(): Promise<string> {
  const result = await build({
    entryPoints: [join(HERE, "app.tsx")],
    bundle: true,
    platform: "browser",
    format: "esm",
    target: "es2022",
    jsx: "automatic",
    conditions: ["source"],
    define: { "process.env.NODE_ENV": '"development"' },
    sourcemap: "inline",
    write: false,
    logLevel: "silent",
  });
  if (result.warnings.length > 0) throw new Error(`bundling the demo app warned: ${result.warnings.map((warning) => warning.text).join("; ")}`);
  return result.outputFiles[0]!.text;
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
  res.end(body);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const port = Number(process.env["PORT"] ?? 5174);
  const demo = await startWebDemo({ port });
  console.log(`Continuity web demo: reference server on ${demo.grpcAddress}, gRPC-web on ${demo.grpcWebAddress}`);
  console.log(`  Ana's laptop: ${demo.url}/?device=laptop`);
  console.log(`  Ana's phone:  ${demo.url}/?device=phone`);
  console.log("Open both in tabs of one browser; Ctrl-C stops the demo and deletes its data.");
  const stop = (): void => {
    void demo.close().then(() => process.exit(0));
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
