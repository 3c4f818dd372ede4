// What the site is made of, read from the repository at build time so the site can never
// disagree with it: the spec's requirements (parsed by scripts/requirements.mjs, the same
// parser that writes requirements.json), the conformance suite's own case list, the proto
// descriptors behind the protocol reference, and the table of which repository file is
// which page.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
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

const pageOfSource = new Map([
  ...Object.entries(EXTERNAL_PAGES).map(([page, source]) => [source, page]),
  ...Object.entries(REWRITES).map(([from, to]) => [`docs/${from}`, to]),
]);
const sourceOfPage = new Map([
  ...Object.entries(EXTERNAL_PAGES),
  ...Object.entries(REWRITES).map(([from, to]) => [to, `docs/${from}`]),
]);

/** The repository path (posix, from the root) of the Markdown behind a page. */
export function sourceOfPagePath(relativePath) {
  return sourceOfPage.get(relativePath) ?? `docs/${relativePath}`;
}

/**
 * Where a link to a repository path goes in the site: `{ page }` (a VitePress page path such
 * as `spec/appends.md`) for Markdown and folders that are pages, `{ file }` for any other
 * existing file (served under SOURCE_PREFIX), or undefined when the target does not exist.
 */
export function siteTargetOf(repoPath) {
  const path = posix.normalize(repoPath).replace(/\/$/, "");
  const page = pageOfSource.get(path) ?? FOLDER_PAGES[path];
  if (page !== undefined) return { page };
  const absolute = join(REPO_ROOT, path);
  if (!existsSync(absolute)) return undefined;
  if (statSync(absolute).isDirectory()) {
    return existsSync(join(absolute, "README.md")) ? siteTargetOf(`${path}/README.md`) : undefined;
  }
  if (path.startsWith("docs/") && path.endsWith(".md")) return { page: path.slice("docs/".length) };
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
    page: pageOfSource.get(`docs/spec/${requirement.file}`) ?? `spec/${requirement.file}`,
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
