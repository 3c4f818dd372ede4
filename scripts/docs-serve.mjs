// `pnpm run docs:serve`: serves the built documentation site (docs/.vitepress/dist, made by
// `pnpm run docs`) on loopback, with the site's clean URLs (`/spec/appends` is
// `spec/appends.html`, `/spec/` is `spec/index.html`). Works offline; nothing is fetched.
//
//   node scripts/docs-serve.mjs [--port 4173] [--host 127.0.0.1]
import { createReadStream, existsSync, statSync } from "node:fs";
import { createServer } from "node:http";
import { extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

export const SITE_DIST = join(fileURLToPath(new URL("..", import.meta.url)), "docs/.vitepress/dist");

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".woff2": "font/woff2",
  ".txt": "text/plain; charset=utf-8",
  ".proto": "text/plain; charset=utf-8",
  ".ts": "text/plain; charset=utf-8",
  ".md": "text/plain; charset=utf-8",
};

/** The file under `root` that a URL path names, or undefined. Never leaves `root`. */
export function resolveSitePath(root, urlPath) {
  let path;
  try {
    path = decodeURIComponent(urlPath.split("?")[0].split("#")[0]);
  } catch {
    return undefined;
  }
  const relative = normalize(path).replace(/^([/\\])+/, "");
  if (relative.split(sep).includes("..")) return undefined;
  const base = join(root, relative);
  const candidates = path.endsWith("/") ? [join(base, "index.html")] : [base, `${base}.html`, join(base, "index.html")];
  return candidates.find((candidate) => existsSync(candidate) && statSync(candidate).isFile());
}

/** Starts the server; resolves with it once it listens. `port` 0 picks a free port. */
export function serveSite({ root = SITE_DIST, host = "127.0.0.1", port = 4173 } = {}) {
  if (!existsSync(join(root, "index.html"))) throw new Error(`no site in ${root}; build it with \`pnpm run docs\``);
  const server = createServer((request, response) => {
    if (request.method !== "GET" && request.method !== "HEAD") {
      response.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    const file = resolveSitePath(root, request.url ?? "/");
    const status = file === undefined ? 404 : 200;
    const body = file ?? join(root, "404.html");
    response.writeHead(status, { "content-type": TYPES[extname(body)] ?? "application/octet-stream", "cache-control": "no-cache" });
    if (request.method === "HEAD") response.end();
    else createReadStream(body).pipe(response);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve(server));
  });
}

async function main(argv) {
  const { values } = parseArgs({ args: argv, options: { port: { type: "string", default: "4173" }, host: { type: "string", default: "127.0.0.1" } } });
  const server = await serveSite({ host: values.host, port: Number.parseInt(values.port, 10) });
  const { address, port } = server.address();
  process.stdout.write(`docs: serving ${SITE_DIST} at http://${address}:${port}/ (Ctrl-C stops)\n`);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).catch((error) => {
    process.stderr.write(`docs: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
