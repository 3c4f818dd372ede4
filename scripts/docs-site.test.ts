import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALL_CASES } from "../conformance/src/cases/index.js";
import { requirementUrl } from "../conformance/src/reporters/requirement-links.js";

// Builds the documentation site exactly as `pnpm run docs` does (minus the two generated
// files that check:gen has already verified), serves it with `pnpm run docs:serve`'s server,
// and reads it the way a person does: in Debian's Chromium (installed by
// scripts/ensure-chromium.mjs), driven by playwright-core. Every page is opened, every
// internal link and anchor must resolve, no page may log an error, and the search must find
// a requirement by its ID. Screenshots land in .artifacts/docs-site/.

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const artifacts = join(root, ".artifacts", "docs-site");
const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const serve = (await import(new URL("./docs-serve.mjs", import.meta.url).href)) as {
  SITE_DIST: string;
  serveSite(options: { root?: string; host?: string; port?: number }): Promise<Server>;
};
const spec = (await import(new URL("./requirements.mjs", import.meta.url).href)) as {
  collectRequirements(files: Record<string, string>): { requirements: { id: string; file: string }[]; problems: string[] };
  readSpecDirectory(dir: string): Record<string, string>;
};

interface Visit {
  path: string;
  ids: Set<string>;
  links: string[];
  errors: string[];
}

let server: Server;
let origin: string;
let context: BrowserContext;
let profile: string;
/** Every page of the site (path as the site links it) → what Chromium saw there. */
const visits = new Map<string, Visit>();

/** The site's pages, as clean URLs: `spec/appends.html` → `/spec/appends`. */
function sitePages(dir: string): string[] {
  const pages: string[] = [];
  const walk = (folder: string) => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith(".html") && entry.name !== "404.html") pages.push(`/${relative(dir, path).replace(/\\/g, "/")}`);
    }
  };
  walk(dir);
  return pages.map((page) => page.replace(/(^|\/)index\.html$/, "$1").replace(/\.html$/, "")).sort();
}

async function visit(page: Page, path: string): Promise<Visit> {
  const errors: string[] = [];
  const onConsole = (message: { type(): string; text(): string }) => {
    if (message.type() === "error") errors.push(message.text());
  };
  const onPageError = (error: Error) => errors.push(error.message);
  const onResponse = (response: { status(): number; url(): string }) => {
    if (response.status() >= 400) errors.push(`${response.status()} ${response.url()}`);
  };
  page.on("console", onConsole);
  page.on("pageerror", onPageError);
  page.on("response", onResponse);
  try {
    await page.goto(`${origin}${path}`, { waitUntil: "load" });
    // Hydrated: VitePress has mounted the app and the page's own content.
    await page.waitForSelector("#app .VPContent", { timeout: 15_000 });
    const { ids, links } = await page.evaluate(() => ({
      ids: [...document.querySelectorAll("[id]")].map((element) => element.id),
      links: [...document.querySelectorAll("a[href]")].map((anchor) => (anchor as HTMLAnchorElement).href),
    }));
    return { path, ids: new Set(ids), links, errors };
  } finally {
    page.off("console", onConsole);
    page.off("pageerror", onPageError);
    page.off("response", onResponse);
  }
}

/** The visit a URL of the site lands on (clean URL, `.html` or folder form), if any. */
function visitOf(url: URL): Visit | undefined {
  const path = decodeURI(url.pathname).replace(/\.html$/, "").replace(/\/index$/, "/");
  return visits.get(path) ?? visits.get(`${path}/`);
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run \`node scripts/ensure-chromium.mjs\` (pnpm test does)`);
  execFileSync(process.execPath, [join(root, "scripts/docs.mjs"), "--site-only"], { cwd: root, stdio: ["ignore", "ignore", "inherit"], timeout: 240_000 });
  server = await serve.serveSite({ port: 0 });
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  profile = mkdtempSync(join(tmpdir(), "continuity-docs-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 900 },
  });
  // Two tabs share the pages; the machine has two cores.
  const pages = sitePages(serve.SITE_DIST);
  const queue = [...pages];
  await Promise.all(
    [0, 1].map(async () => {
      const tab = await context.newPage();
      for (let path = queue.shift(); path !== undefined; path = queue.shift()) visits.set(path, await visit(tab, path));
      await tab.close();
    }),
  );
}, 300_000);

afterAll(async () => {
  await context?.close();
  await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
  if (profile !== undefined) rmSync(profile, { recursive: true, force: true });
});

describe("the documentation site", () => {
  it("has the pages a reader looks for", () => {
    for (const path of ["/", "/overview", "/flows", "/spec/", "/spec/appends", "/spec/errors", "/spec/hashing", "/requirements/", "/reference/protocol", "/sdk/", "/sdk-api/", "/guides/", "/guides/sdk-hand-off", "/conformance/", "/conformance/cases", "/conformance/vectors"]) {
      expect(visits.has(path), path).toBe(true);
    }
  });

  it("logs no error on any page", () => {
    const failing = [...visits.values()].filter((visited) => visited.errors.length > 0).map((visited) => `${visited.path}: ${visited.errors.join("; ")}`);
    expect(failing).toEqual([]);
  });

  it("resolves every internal link and anchor", () => {
    const broken: string[] = [];
    for (const visited of visits.values()) {
      for (const href of visited.links) {
        const url = new URL(href);
        if (url.origin !== origin) continue;
        const target = visitOf(url);
        if (target === undefined) {
          const file = join(serve.SITE_DIST, decodeURI(url.pathname));
          if (!existsSync(file)) broken.push(`${visited.path} → ${url.pathname}: no such page or file`);
          continue;
        }
        const anchor = decodeURIComponent(url.hash.slice(1));
        if (anchor !== "" && !target.ids.has(anchor)) broken.push(`${visited.path} → ${url.pathname}#${anchor}: no such anchor`);
      }
    }
    expect(broken).toEqual([]);
  });

  it("gives every requirement an anchor on its spec page and on the requirements page, with the cases that test it", async () => {
    const { requirements, problems } = spec.collectRequirements(spec.readSpecDirectory(join(root, "docs/spec")));
    expect(problems).toEqual([]);
    expect(requirements.length).toBeGreaterThan(100);
    const missing = requirements.flatMap(({ id, file }) => [
      ...(visits.get(`/spec/${file.replace(/\.md$/, "")}`)?.ids.has(id) ? [] : [`/spec/${file}#${id}`]),
      ...(visits.get("/requirements/")?.ids.has(id) ? [] : [`/requirements/#${id}`]),
    ]);
    expect(missing).toEqual([]);

    // "Tested by" under each requirement is the suite's own case list, and links to the case.
    const tab = await context.newPage();
    await tab.goto(`${origin}/spec/appends`, { waitUntil: "load" });
    const shown = await tab.evaluate(() =>
      Object.fromEntries(
        [...document.querySelectorAll("li.requirement")].map((item) => [item.id, [...item.querySelectorAll(".requirement-tests a")].map((a) => a.textContent ?? "")]),
      ),
    );
    await tab.close();
    const appendIds = requirements.filter((requirement) => requirement.file === "appends.md").map((requirement) => requirement.id);
    expect(Object.keys(shown).sort()).toEqual([...appendIds].sort());
    for (const id of appendIds) {
      expect(shown[id], id).toEqual(ALL_CASES.filter((conformanceCase) => conformanceCase.requirements.includes(id)).map((conformanceCase) => conformanceCase.id));
    }
    // The address a conformance report links a failure to (`--docs-url`) is this entry.
    for (const { id } of requirements) expect(visitOf(new URL(requirementUrl(id, origin)))?.ids.has(id), id).toBe(true);
    const casesPage = visits.get("/conformance/cases")!;
    for (const conformanceCase of ALL_CASES) expect(casesPage.ids.has(`case-${conformanceCase.id.replace(/[^a-z0-9]+/g, "-")}`), conformanceCase.id).toBe(true);
  });

  it("links the protocol reference to the spec, and the spec to the reference", async () => {
    const reference = visits.get("/reference/protocol")!;
    for (const anchor of ["continuity-v1-portabilityservice-createmigration", "continuity-v1-exportsubjectrequest", "continuity-v1-exportsubjectrequest-after", "continuity-v1-errorreason"]) {
      expect(reference.ids.has(anchor), anchor).toBe(true);
    }
    expect(reference.links.some((href) => href.endsWith("/spec/portability#PORT-030"))).toBe(true);
    expect(visits.get("/spec/portability")!.links.some((href) => href.endsWith("/reference/protocol#continuity-v1-portabilityservice-createmigration"))).toBe(true);
  });

  it("draws the sequence diagrams", async () => {
    const tab = await context.newPage();
    await tab.goto(`${origin}/flows`, { waitUntil: "load" });
    // As many drawings as flows.md has diagrams. Waiting for "exactly n" with a hard-coded n
    // passed only while the drawing in progress happened to be polled at n.
    const diagrams = readFileSync(join(root, "docs", "flows.md"), "utf8").split("```mermaid").length - 1;
    await tab.waitForFunction((n) => document.querySelectorAll(".mermaid-diagram svg").length >= n, diagrams, { timeout: 30_000 });
    expect(await tab.locator(".mermaid-diagram svg").count()).toBe(diagrams);
    expect(await tab.locator(".mermaid-failure").count()).toBe(0);
    await tab.close();
  });

  it("finds a requirement by its ID with the offline search", async () => {
    const tab = await context.newPage();
    await tab.goto(`${origin}/`, { waitUntil: "load" });
    await tab.locator(".VPNavBarSearch button").click();
    await tab.locator("input.search-input").fill("APPEND-011");
    const first = tab.locator(".VPLocalSearchBox .results li a").first();
    await first.waitFor({ timeout: 15_000 });
    expect(await first.getAttribute("href")).toMatch(/#APPEND-011$/);
    await first.click();
    await tab.waitForURL(/#APPEND-011$/);
    // The router swaps the page in after the URL changes.
    await tab.locator('[id="APPEND-011"]').waitFor({ state: "visible", timeout: 15_000 });
    await tab.close();
  });

  it("shows a worked hashing example whose hashes are those of the test vectors", async () => {
    const vectors = readdirSync(join(root, "conformance/vectors"))
      .filter((name) => name.endsWith(".json"))
      .map((name) => readFileSync(join(root, "conformance/vectors", name), "utf8"))
      .join("\n");
    const tab = await context.newPage();
    await tab.goto(`${origin}/spec/hashing#worked-example`, { waitUntil: "load" });
    const example = await tab.evaluate(() => {
      const heading = document.getElementById("worked-example");
      let text = "";
      for (let node = heading?.nextElementSibling; node !== null && node !== undefined && !/^H[1-3]$/.test(node.tagName); node = node.nextElementSibling) text += `${node.textContent ?? ""}\n`;
      return text;
    });
    await tab.close();
    const hashes = [...example.matchAll(/= ([0-9a-f]{64})\b|giving\s+([0-9a-f]{64})\b/g)].map((match) => match[1] ?? match[2]);
    expect(hashes.length).toBeGreaterThanOrEqual(3);
    for (const hash of hashes) expect(vectors, hash).toContain(hash);
  });

  it("writes screenshots of the front page and of the protocol reference", async () => {
    mkdirSync(artifacts, { recursive: true });
    const tab = await context.newPage();
    await tab.goto(`${origin}/`, { waitUntil: "networkidle" });
    await tab.screenshot({ path: join(artifacts, "front-page.png") });
    await tab.goto(`${origin}/reference/protocol#continuity-v1-portabilityservice-createmigration`, { waitUntil: "networkidle" });
    await tab.screenshot({ path: join(artifacts, "reference-createmigration.png") });
    await tab.close();
    expect(existsSync(join(artifacts, "front-page.png"))).toBe(true);
    expect(existsSync(join(artifacts, "reference-createmigration.png"))).toBe(true);
  });
});
