// The documentation site: `pnpm run docs` builds it into docs/.vitepress/dist, `pnpm run
// docs:serve` serves that folder. Pages are the repository's own Markdown (docs/, the
// conformance and SDK READMEs, TypeDoc's output in docs/sdk-api), transformed at build time
// by lib/markdown.mjs; nothing here copies or restates their content.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { createMarkdownRenderer, defineConfig, type DefaultTheme, type MarkdownOptions } from "vitepress";
import conformancePaths from "../conformance/[page].paths.mjs";
import repoPaths from "../repo/[path].paths.mjs";
import requirementsPaths from "../requirements/[page].paths.mjs";
import sdkPaths from "../sdk/[page].paths.mjs";
import { continuityMarkdown, linkedSourceFiles } from "./lib/markdown.mjs";
import { DOCS_ROOT, githubSlug, REPO_ROOT, repoMarkdownPages, REWRITES, SOURCE_PREFIX } from "./lib/sources.mjs";

// The spec's files in the order of the table in docs/spec/README.md; any file the table does
// not list yet follows, so a new spec file is never missing from the navigation.
function specItems(): DefaultTheme.SidebarItem[] {
  const readme = readFileSync(join(DOCS_ROOT, "spec/README.md"), "utf8");
  const listed = [...readme.matchAll(/^\| \[([a-z0-9-]+\.md)\]/gm)].map((match) => match[1]!);
  const present = readdirSync(join(DOCS_ROOT, "spec")).filter((name) => name.endsWith(".md") && name !== "README.md");
  const ordered = [...listed.filter((name) => present.includes(name)), ...present.filter((name) => !listed.includes(name)).sort()];
  return ordered.map((name) => ({ text: titleOf(join(DOCS_ROOT, "spec", name)), link: `/spec/${name.replace(/\.md$/, "")}` }));
}

function titleOf(file: string): string {
  const heading = /^#\s+(.*)$/m.exec(readFileSync(file, "utf8"))?.[1] ?? file;
  return heading.replace(/`/g, "").replace(/:.*$/, "");
}

function guideItems(): DefaultTheme.SidebarItem[] {
  return readdirSync(join(DOCS_ROOT, "guides"))
    .filter((name) => name.endsWith(".md") && name !== "index.md")
    .sort()
    .map((name) => ({ text: titleOf(join(DOCS_ROOT, "guides", name)), link: `/guides/${name.replace(/\.md$/, "")}` }));
}

// TypeDoc writes one folder per concern (scripts/typedoc-concerns.mjs); the sidebar follows
// the concern order of its configuration. The generated messages are reached through `v1`.
function apiItems(): DefaultTheme.SidebarItem[] {
  const apiRoot = join(DOCS_ROOT, "sdk-api");
  if (!existsSync(apiRoot)) return [];
  const { categoryOrder } = JSON.parse(readFileSync(join(DOCS_ROOT, ".vitepress/typedoc.json"), "utf8")) as { categoryOrder: string[] };
  return categoryOrder
    .filter((title) => title !== "*")
    .map((title) => ({ title, folder: title.replace(/ /g, "_") }))
    .filter(({ folder }) => existsSync(join(apiRoot, folder)))
    .map(({ title, folder }) => ({
      text: title,
      collapsed: true,
      items: readdirSync(join(apiRoot, folder))
        .filter((name) => name.endsWith(".md") && (title !== "Generated messages" || name === "v1.md"))
        .sort((a, b) => a.localeCompare(b, "en", { sensitivity: "base" }))
        .map((name) => ({ text: name.replace(/\.md$/, ""), link: `/sdk-api/${folder}/${name.replace(/\.md$/, "")}` })),
    }));
}

// The repository's other READMEs (lib/sources.mjs, repoMarkdownPages), by their titles.
function repositoryItems(): DefaultTheme.SidebarItem[] {
  return [...repoMarkdownPages()]
    .map(([page, source]) => ({ text: titleOf(join(REPO_ROOT, source)), link: `/${page.replace(/(^|\/)index\.md$/, "$1").replace(/\.md$/, "")}` }))
    .sort((a, b) => a.link.localeCompare(b.link));
}

const protocolSidebar: DefaultTheme.SidebarItem[] = [
  {
    text: "Start here",
    items: [
      { text: "Continuity in five minutes", link: "/overview" },
      { text: "The flows, drawn", link: "/flows" },
    ],
  },
  {
    text: "Specification",
    items: [{ text: "Conventions and requirement IDs", link: "/spec/" }, ...specItems(), { text: "Every requirement", link: "/requirements/" }],
  },
  {
    text: "Reference",
    items: [
      { text: "Protocol reference", link: "/reference/protocol" },
      { text: "Error table", link: "/spec/errors#reasons" },
      { text: "Hashing and worked example", link: "/spec/hashing#worked-example" },
    ],
  },
  {
    text: "Conformance",
    items: [
      { text: "Running the suite", link: "/conformance/" },
      { text: "Cases and what they test", link: "/conformance/cases" },
      { text: "Hashing test vectors", link: "/conformance/vectors" },
    ],
  },
  { text: "Repository", collapsed: true, items: [...repositoryItems(), { text: "Maintaining the docs", link: "/maintaining" }] },
];

const sdkSidebar: DefaultTheme.SidebarItem[] = [
  { text: "SDK", items: [{ text: "@continuity/sdk", link: "/sdk/" }, { text: "Guides", link: "/guides/" }, ...guideItems()] },
  { text: "API by concern", items: [{ text: "Overview", link: "/sdk-api/" }, ...apiItems()] },
];

// The pages of the dynamic routes, by page path (`requirements/index.md` → its Markdown).
let dynamicPagesCache: Map<string, string> | undefined;
function dynamicPages(): Map<string, string> {
  dynamicPagesCache ??= new Map(
    [
      ["conformance", conformancePaths],
      ["requirements", requirementsPaths],
      ["sdk", sdkPaths],
      ["repo", repoPaths],
    ].flatMap(([folder, loader]) => (loader as DynamicRoutes).paths().map(({ params, content }) => [`${folder}/${params.page ?? params.path}.md`, content] as const)),
  );
  return dynamicPagesCache;
}
interface DynamicRoutes {
  paths(): { params: { page?: string; path?: string }; content: string }[];
}

let searchRendererCache: ReturnType<typeof createMarkdownRenderer> | undefined;
function searchRenderer(): ReturnType<typeof createMarkdownRenderer> {
  searchRendererCache ??= createMarkdownRenderer(DOCS_ROOT, markdown);
  return searchRendererCache;
}

/** Sections as VitePress's local search indexes them: one per heading, titled by the heading path. */
function splitIntoSections(html: string): { anchor: string; titles: string[]; text: string }[] {
  const plain = (fragment: string) =>
    fragment
      .replace(/<a class="header-anchor"[^>]*>.*?<\/a>/g, "")
      .replace(/<[^>]+>/g, " ")
      .replace(/&lt;/g, "<")
      .replace(/&gt;/g, ">")
      .replace(/&quot;/g, '"')
      .replace(/&#39;/g, "'")
      .replace(/&amp;/g, "&")
      .replace(/\s+/g, " ")
      .trim();
  const sections: { anchor: string; titles: string[]; text: string }[] = [];
  const titles: string[] = [];
  for (const part of html.split(/(<h[1-6][^>]*>[\s\S]*?<\/h[1-6]>)/)) {
    const heading = /^<h([1-6])([^>]*)>([\s\S]*?)<\/h\1>$/.exec(part);
    if (heading !== null) {
      const level = Number(heading[1]);
      titles.length = level - 1;
      titles[level - 1] = plain(heading[3]!);
      const anchor = /\bid="([^"]*)"/.exec(heading[2]!)?.[1] ?? "";
      sections.push({ anchor, titles: titles.filter((title) => title !== undefined), text: "" });
    } else if (sections.length > 0) {
      sections.at(-1)!.text += ` ${plain(part)}`;
    }
  }
  return sections.filter((section) => section.titles.length > 0);
}

const markdown: MarkdownOptions = {
  anchor: { slugify: githubSlug },
  config: (md) => continuityMarkdown(md),
};

// Mermaid's prebuilt browser bundle, served from the site itself so diagrams draw offline.
const mermaidBundle = join(REPO_ROOT, "node_modules/mermaid/dist/mermaid.min.js");
mkdirSync(join(DOCS_ROOT, "public/vendor"), { recursive: true });
copyFileSync(mermaidBundle, join(DOCS_ROOT, "public/vendor/mermaid.min.js"));

export default defineConfig({
  title: "Continuity",
  description: "An open protocol for carrying a person's application state across devices and platforms.",
  cleanUrls: true,
  head: [["link", { rel: "icon", type: "image/svg+xml", href: "/favicon.svg" }]],
  rewrites: REWRITES,
  markdown,
  // The search index and the page of generated messages are single large chunks by nature.
  vite: { build: { chunkSizeWarningLimit: 2048 } },
  themeConfig: {
    nav: [
      { text: "Overview", link: "/overview", activeMatch: "^/(overview|flows)" },
      { text: "Spec", link: "/spec/", activeMatch: "^/(spec|requirements)/" },
      { text: "Reference", link: "/reference/protocol", activeMatch: "^/reference/" },
      { text: "SDK", link: "/sdk/", activeMatch: "^/(sdk|sdk-api|guides)/" },
      { text: "Conformance", link: "/conformance/", activeMatch: "^/conformance/" },
    ],
    sidebar: {
      "/sdk/": sdkSidebar,
      "/sdk-api/": sdkSidebar,
      "/guides/": sdkSidebar,
      "/": protocolSidebar,
    },
    logo: "/favicon.svg",
    outline: { level: [2, 3] },
    search: {
      provider: "local",
      options: {
        miniSearch: {
          // Requirement IDs stay one term (`append-011`), besides their parts, so that searching
          // for an ID finds that requirement first rather than everything about appends. This
          // function is sent to the browser as source: it may use nothing from this file.
          options: {
            tokenize: (text: string) => [...text.split(/[\n\r\p{Z}\p{P}]+/u), ...(text.match(/\b[A-Z]+-\d{3}\b/g) ?? [])],
          },
          // An ID is matched exactly (no fuzzy `APPEND-014` for `APPEND-011`) and outweighs the
          // words it is made of. Sent to the browser as source, like `tokenize`.
          searchOptions: {
            fuzzy: (term: string) => (/\d/.test(term) ? false : 0.2),
            boostTerm: (term: string) => (/^[a-z]+-\d{3}$/.test(term) ? 10 : 1),
          },
          // VitePress indexes a page by reading its file; the pages made by dynamic routes
          // (the requirements, the cases, the READMEs from outside docs/) have none, so they
          // are rendered here. Other pages fall through to VitePress's own splitting.
          _splitIntoSections: async (file: string) => {
            const page = relative(DOCS_ROOT, file).replace(/\\/g, "/");
            const content = dynamicPages().get(page);
            if (content === undefined) return undefined;
            return splitIntoSections((await searchRenderer()).render(content, { path: file, relativePath: page, cleanUrls: true }));
          },
        },
      },
    },
    footer: { message: "Built from the repository: the spec, the proto comments, the SDK's TSDoc and the conformance suite." },
  },
  // Pages made of wide tables (the error table, the protocol and SDK references) get a wider
  // column, so that a table's last column, usually its description, is on screen.
  transformPageData(pageData) {
    if (/^(spec\/errors|reference\/protocol|sdk-api\/)/.test(pageData.relativePath)) pageData.frontmatter.pageClass = "wide-page";
  },
  // Repository files that pages link to and that are not pages (proto files, JSON vectors)
  // are copied as they are, so every link in the site resolves offline.
  buildEnd(site) {
    for (const file of linkedSourceFiles) {
      const target = join(site.outDir, SOURCE_PREFIX, file);
      mkdirSync(dirname(target), { recursive: true });
      copyFileSync(join(REPO_ROOT, file), target);
    }
  },
});
