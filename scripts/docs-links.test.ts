import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

// The spec is read as a web of links (requirements point at hashing.md sections, the error
// table at errors.proto); a renamed heading or file must fail the build, not a reader.

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const docsRoot = join(root, "docs");

function markdownFiles(dir: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) {
      if (entry !== "sdk-api") found.push(...markdownFiles(path));
    } else if (entry.endsWith(".md")) {
      found.push(path);
    }
  }
  return found.sort();
}

/** The anchors GitHub renders for a Markdown file: heading slugs plus explicit `<a id>`s. */
function anchorsOf(source: string): Set<string> {
  const anchors = new Set<string>();
  const counts = new Map<string, number>();
  let fenced = false;
  for (const line of source.split("\n")) {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    if (fenced) continue;
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading !== null) {
      const base = heading[1]!
        .toLowerCase()
        .replace(/[^\p{L}\p{N}\s_-]/gu, "")
        .replace(/\s/g, "-");
      const seen = counts.get(base) ?? 0;
      counts.set(base, seen + 1);
      anchors.add(seen === 0 ? base : `${base}-${seen}`);
    }
    for (const match of line.matchAll(/<a id="([^"]+)"><\/a>/g)) anchors.add(match[1]!);
  }
  return anchors;
}

function linksOf(source: string): { target: string; line: number }[] {
  const links: { target: string; line: number }[] = [];
  let fenced = false;
  source.split("\n").forEach((line, index) => {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    if (fenced) return;
    const withoutCode = line.replace(/`[^`]*`/g, "");
    for (const match of withoutCode.matchAll(/\]\(([^)\s]+)\)/g)) links.push({ target: match[1]!, line: index + 1 });
  });
  return links;
}

function brokenLinks(file: string): string[] {
  const problems: string[] = [];
  const source = readFileSync(file, "utf8");
  for (const { target, line } of linksOf(source)) {
    if (/^[a-z]+:/i.test(target)) continue;
    const [path = "", anchor] = target.split("#", 2);
    const resolved = path === "" ? file : resolve(dirname(file), decodeURI(path));
    const where = `${relative(root, file)}:${line}: ${target}`;
    if (!existsSync(resolved)) {
      problems.push(`${where}: no such file`);
      continue;
    }
    if (anchor !== undefined && resolved.endsWith(".md") && !anchorsOf(readFileSync(resolved, "utf8")).has(anchor)) {
      problems.push(`${where}: no such anchor`);
    }
  }
  return problems;
}

describe("links in docs/", () => {
  it("finds the documents it checks", () => {
    const files = markdownFiles(docsRoot).map((file) => relative(docsRoot, file));
    expect(files).toEqual(expect.arrayContaining(["README.md", "spec/README.md", "spec/appends.md", "reference/protocol.md"]));
  });

  it("resolve to existing files and headings", () => {
    expect(markdownFiles(docsRoot).flatMap(brokenLinks)).toEqual([]);
  });

  it("reports a link to a missing heading or file", () => {
    const anchors = anchorsOf("# Title\n\n## Check order\n\n## Check order\n\n### `ListDeltas` paging\n");
    expect([...anchors]).toEqual(["title", "check-order", "check-order-1", "listdeltas-paging"]);
    expect(linksOf("See [x](a.md#b) and `[y](c.md)` and [z](https://e.org).")).toEqual([
      { target: "a.md#b", line: 1 },
      { target: "https://e.org", line: 1 },
    ]);
  });
});
