// What the site is made of, read from the repository at build time so the site can never
// disagree with it: the spec's requirements (parsed by scripts/requirements.mjs, the same
// parser that writes requirements.json), the conformance suite's own case list, the proto
// descriptors behind the protocol reference, and the table of which repository file is
// which page.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, posix } from "node:path";
import { fileURLToPath } from "node:url";
import { collectRequirements, readSpecDirectory } from "../../../scripts/requirements.mjs";
import { buildDescriptorSet } from "../../../scripts/reference.mjs";

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
export const DOCS_ROOT = join(REPO_ROOT, "docs");

/**
 * Pages whose Markdown lives outside docs/: the site route (a path under docs/ as VitePress
 * sees it, made by a dynamic route) → the repository file it shows.
 */
export const EXTERNAL_PAGES = {
  "conformance/index.md": "conformance/README.md",
  "conformance/vectors.md": "conformance/vectors/README.md",
  "sdk/index.md": "packages/sdk/README.md",
};

/**
 * Every other Markdown file of the repository outside docs/ (package READMEs and the like) is
 * a page under /repo/, made by the dynamic route docs/repo/[path].md: `packages/cli/README.md`
 * is `/repo/packages/cli/`. Found by walking the tree, so a new README is a page at once.
 */
export function repoMarkdownPages() {
  const pages = new Map();
  const walk = (folder) => {
    for (const entry of readdirSync(join(REPO_ROOT, folder), { withFileTypes: true })) {
      const path = folder === "" ? entry.name : `${folder}/${entry.name}`;
      if (entry.isDirectory()) {
        if (!entry.name.startsWith(".") && !SKIPPED_FOLDERS.has(entry.name) && path !== "docs") walk(path);
      } else if (entry.name.endsWith(".md") && EXTERNAL_PAGES_BY_SOURCE.get(path) === undefined) {
        pages.set(`repo/${path.replace(/(^|\/)README\.md$/, "$1index.md")}`, path);
      }
    }
  };
  walk("");
  return pages;
}
const SKIPPED_FOLDERS = new Set(["node_modules", "dist", "coverage"]);

/**
 * Folders without a README that some page links to (GitHub shows their files): each is a page
 * under /repo/ listing its files, which the site serves as they are. Found by scanning the
 * pages' Markdown for links; the link rule in markdown.mjs still resolves every link itself,
 * and fails the build on one this scan missed.
 */
export function folderListingPages() {
  const sources = [...markdownUnder("docs"), ...Object.values(EXTERNAL_PAGES), ...repoMarkdownPages().values()];
  const folders = new Set();
  for (const source of sources) {
    const text = readFileSync(join(REPO_ROOT, source), "utf8").replace(/```[\s\S]*?```/g, "").replace(/`[^`\n]*`/g, "");
    for (const [, target] of text.matchAll(/\]\(([^)\s#]+)(?:#[^)\s]*)?\)/g)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith("/")) continue;
      const folder = posix.normalize(posix.join(posix.dirname(source), decodeURI(target))).replace(/\/$/, "");
      const absolute = join(REPO_ROOT, folder);
      if (folder.startsWith("..") || FOLDER_PAGES[folder] !== undefined || !existsSync(absolute) || !statSync(absolute).isDirectory()) continue;
      if (!existsSync(join(absolute, "README.md"))) folders.add(folder);
    }
  }
  return new Map([...folders].sort().map((folder) => [`repo/${folder}/index.md`, folder]));
}

/** The Markdown page listing a folder's files, with links relative to the folder. */
export function folderListing(folder) {
  const entries = readdirSync(join(REPO_ROOT, folder), { withFileTypes: true }).filter((entry) => !entry.name.startsWith("."));
  const files = entries.filter((entry) => entry.isFile()).map((entry) => `- [${entry.name}](${encodeURI(entry.name)})`);
  const readmes = entries.filter((entry) => entry.isDirectory() && existsSync(join(REPO_ROOT, folder, entry.name, "README.md"))).map((entry) => `- [${entry.name}/](${encodeURI(entry.name)}/README.md)`);
  return [`# \`${folder}/\``, "", "The files of this folder of the repository, as they are.", "", ...readmes, ...files, ""].join("\n");
}

function markdownUnder(folder) {
  const found = [];
  for (const entry of readdirSync(join(REPO_ROOT, folder), { withFileTypes: true })) {
    const path = `${folder}/${entry.name}`;
    if (entry.isDirectory()) {
      if (!entry.name.startsWith(".") && !SKIPPED_FOLDERS.has(entry.name) && entry.name !== "sdk-api") found.push(...markdownUnder(path));
    } else if (entry.name.endsWith(".md") && !entry.name.includes("[")) {
      found.push(path);
    }
  }
  return found;
}
const EXTERNAL_PAGES_BY_SOURCE = new Map(Object.entries(EXTERNAL_PAGES).map(([page, source]) => [source, page]));

/** Pages under docs/ that VitePress shows at another path (VitePress `rewrites`). */
export const REWRITES = {
  "spec/README.md": "spec/index.md",
  "README.md": "maintaining.md",
};

/** Folders a link may point at, and the page that stands for each. */
const FOLDER_PAGES = {
  docs: "index.md",
  "docs/spec": "spec/index.md",
  "docs/guides": "guides/index.md",
  "docs/reference": "reference/protocol.md",
  conformance: "conformance/index.md",
  "conformance/vectors": "conformance/vectors.md",
  "packages/sdk": "sdk/index.md",
  proto: "reference/protocol.md",
  "proto/continuity/v1": "reference/protocol.md",
};

/** Where repository files that are not pages (proto files, JSON vectors) are copied in the site. */
export const SOURCE_PREFIX = "/source/";

let pageTables;
function tables() {
  if (pageTables !== undefined) return pageTables;
  const repoPages = [...repoMarkdownPages()];
  const listings = [...folderListingPages()];
  pageTables = {
    pageOfSource: new Map([
      ...Object.entries(EXTERNAL_PAGES).map(([page, source]) => [source, page]),
      ...repoPages.map(([page, source]) => [source, page]),
      ...listings.map(([page, folder]) => [folder, page]),
      ...Object.entries(REWRITES).map(([from, to]) => [`docs/${from}`, to]),
    ]),
    sourceOfPage: new Map([
      ...Object.entries(EXTERNAL_PAGES),
      ...repoPages,
      // A listing's links are relative to its folder.
      ...listings.map(([page, folder]) => [page, `${folder}/index.md`]),
      ...Object.entries(REWRITES).map(([from, to]) => [to, `docs/${from}`]),
    ]),
  };
  return pageTables;
}

/** The repository path (posix, from the root) of the Markdown behind a page. */
export function sourceOfPagePath(relativePath) {
  return tables().sourceOfPage.get(relativePath) ?? `docs/${relativePath}`;
}

/**
 * Where a link to a repository path goes in the site: `{ page }` (a VitePress page path such
 * as `spec/appends.md`) for Markdown and folders that are pages, `{ file }` for any other
 * existing file (served under SOURCE_PREFIX), or undefined when the target does not exist.
 */
export function siteTargetOf(repoPath) {
  const path = posix.normalize(repoPath).replace(/\/$/, "");
  const page = tables().pageOfSource.get(path) ?? FOLDER_PAGES[path];
  if (page !== undefined) return { page };
  const absolute = join(REPO_ROOT, path);
  if (!existsSync(absolute)) return undefined;
  if (statSync(absolute).isDirectory()) {
    return existsSync(join(absolute, "README.md")) ? siteTargetOf(`${path}/README.md`) : undefined;
  }
  if (path.startsWith("docs/") && path.endsWith(".md")) return { page: path.slice("docs/".length) };
  // Markdown outside docs/ is always a page (repoMarkdownPages); one in a skipped folder is not
  // something to link to.
  if (path.endsWith(".md")) return undefined;
  return { file: path };
}

/** The route of a page path: `spec/appends.md` → `/spec/appends`, `spec/index.md` → `/spec/`. */
export function routeOf(pagePath) {
  return `/${pagePath.replace(/(^|\/)index\.md$/, "$1").replace(/\.md$/, "")}`;
}

let requirementsCache;
/**
 * Every requirement of docs/spec as it is now (not as requirements.json last recorded it),
 * with the page it lives on. Fails on a spec that scripts/requirements.mjs would refuse.
 */
export function loadRequirements() {
  if (requirementsCache !== undefined) return requirementsCache;
  const { requirements, problems } = collectRequirements(readSpecDirectory(join(DOCS_ROOT, "spec")));
  if (problems.length > 0) throw new Error(`docs/spec has problems (node scripts/requirements.mjs --check):\n${problems.join("\n")}`);
  requirementsCache = requirements.map((requirement) => ({
    ...requirement,
    page: tables().pageOfSource.get(`docs/spec/${requirement.file}`) ?? `spec/${requirement.file}`,
  }));
  return requirementsCache;
}

let casesCache;
/**
 * The conformance suite's case list, `{ id, profile, requirements }` in report order, read by
 * importing conformance/src/cases (through tsx, as the suite itself runs) rather than by
 * parsing its source.
 */
export function loadCases() {
  if (casesCache !== undefined) return casesCache;
  const json = execFileSync(process.execPath, ["--conditions=source", "--import", "tsx", join(REPO_ROOT, "scripts/conformance-cases.ts")], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    maxBuffer: 16 * 1024 * 1024,
  });
  casesCache = JSON.parse(json);
  return casesCache;
}

/** Requirement ID → the ids of the cases that name it. */
export function casesByRequirement() {
  const byRequirement = new Map();
  for (const conformanceCase of loadCases()) {
    for (const id of conformanceCase.requirements) byRequirement.set(id, [...(byRequirement.get(id) ?? []), conformanceCase.id]);
  }
  return byRequirement;
}

let descriptorCache;
/** The continuity.v1 FileDescriptorSet with comments, as scripts/reference.mjs reads it. */
export function loadDescriptorSet() {
  descriptorCache ??= buildDescriptorSet(REPO_ROOT);
  return descriptorCache;
}

/** The anchor scripts/reference.mjs gives an element: `.continuity.v1.Foo.bar` → `continuity-v1-foo-bar`. */
export function referenceAnchor(fullName) {
  return fullName.replace(/^\./, "").replace(/[^A-Za-z0-9]+/g, "-").toLowerCase();
}

/** GitHub's heading anchors, so that links written for the repository work in the site too. */
export function githubSlug(text) {
  return text
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-");
}

export function readRepoFile(path) {
  return readFileSync(join(REPO_ROOT, path), "utf8");
}
