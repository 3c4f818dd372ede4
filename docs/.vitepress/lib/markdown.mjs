// The markdown-it rules that turn the repository's Markdown into the site, at build time, so
// the spec, the READMEs and the generated reference stay the single source:
//
// - links: a relative link is resolved against the file's place in the repository and sent
//   to the page that shows its target (or to a copy of a non-Markdown file), so links
//   written for GitHub work unchanged; a link to nothing fails the build;
// - requirements: every `- **AREA-NNN** (LEVEL)` item gets its ID as a stable anchor and a
//   line naming the conformance cases that test it; every mention of an ID links to it;
// - protocol names: a code span naming a proto element links to the protocol reference, and
//   an error reason to its row in the error table; the reference itself gets an anchor on
//   every field and value, and under every element the requirements and spec sections that
//   govern it and what uses it;
// - mermaid: a ```mermaid fence becomes a diagram (rendered in the browser, from the text).
import { dirname, posix } from "node:path";
import { casesByRequirement, loadRequirements, referenceAnchor, routeOf, siteTargetOf, SOURCE_PREFIX, sourceOfPagePath } from "./sources.mjs";
import { buildProtocolIndex } from "./protocol-index.mjs";

const REQUIREMENT_ID = /^[A-Z]+-\d{3}$/;
const ID_MENTION = /\b([A-Z]+-\d{3})\b/g;
const REFERENCE_PAGE = "reference/protocol.md";
const ERRORS_PAGE = "spec/errors.md";

/** Repository files (not pages) that some page links to; the build copies them under SOURCE_PREFIX. */
export const linkedSourceFiles = new Set();

/** The anchor of a conformance case on the case list page. */
export function caseAnchor(caseId) {
  return `case-${caseId.replace(/[^a-z0-9]+/g, "-")}`;
}

export function continuityMarkdown(md) {
  const requirements = new Map(loadRequirements().map((requirement) => [requirement.id, requirement]));
  const cases = casesByRequirement();
  const protocol = buildProtocolIndex();
  const reasons = new Set([...protocol.elements.values()].filter((e) => e.kind === "enum value" && e.label.startsWith("ErrorReason.")).map((e) => e.label.replace("ErrorReason.ERROR_REASON_", "")));

  const requirementHref = (id, env) => {
    const requirement = requirements.get(id);
    return requirement.page === env.relativePath ? `#${id}` : `${routeOf(requirement.page)}#${id}`;
  };
  const referenceHref = (anchor, env) => (env.relativePath === REFERENCE_PAGE ? `#${anchor}` : `${routeOf(REFERENCE_PAGE)}#${anchor}`);

  md.core.ruler.push("continuity_links", (state) => {
    const source = sourceOfPagePath(state.env.relativePath);
    forEachInline(state.tokens, (children) => {
      for (const token of children) {
        if (token.type !== "link_open") continue;
        const href = token.attrGet("href") ?? "";
        if (href === "" || href.startsWith("#") || href.startsWith("/") || /^[a-z][a-z0-9+.-]*:/i.test(href)) continue;
        const [path, hash] = splitHash(href);
        const repoPath = posix.join(dirname(source), decodeURI(path));
        const target = siteTargetOf(repoPath);
        if (target === undefined) throw new Error(`${source}: link to ${href} (${repoPath}) points at nothing in the repository`);
        if (target.page !== undefined) {
          token.attrSet("href", `${routeOf(target.page)}${hash}`);
        } else {
          linkedSourceFiles.add(target.file);
          token.attrSet("href", `${SOURCE_PREFIX}${target.file}${hash}`);
          token.attrSet("target", "_self");
        }
      }
    });
  });

  md.core.ruler.push("continuity_requirements", (state) => {
    const source = sourceOfPagePath(state.env.relativePath);
    const tokens = state.tokens;
    if (source.startsWith("docs/spec/")) {
      for (let index = 0; index < tokens.length; index++) {
        if (tokens[index].type !== "list_item_open") continue;
        const inline = tokens[index + 2];
        const children = inline?.type === "inline" ? inline.children : undefined;
        // markdown-it may leave an empty text token before the first strong.
        const start = children?.findIndex((child) => !(child.type === "text" && child.content === "")) ?? -1;
        const id = children?.[start + 1]?.content;
        if (children?.[start]?.type !== "strong_open" || children[start + 2]?.type !== "strong_close" || !REQUIREMENT_ID.test(id ?? "")) continue;
        if (requirements.get(id)?.file !== source.slice("docs/spec/".length)) continue;
        tokens[index].attrSet("id", id);
        tokens[index].attrJoin("class", "requirement");
        children.splice(start, 0, linkOpen(state, `#${id}`, "requirement-id"));
        children.splice(start + 4, 0, new state.Token("link_close", "a", -1));
        const close = matchingClose(tokens, index);
        const tests = new state.Token("html_block", "", 0);
        tests.content = testedByHtml(id, cases.get(id) ?? [], requirements.get(id).level);
        tokens.splice(close, 0, tests);
      }
    }
    for (let index = 0; index < tokens.length; index++) {
      if (tokens[index].type !== "inline" || tokens[index - 1]?.type === "heading_open") continue;
      tokens[index].children = linkMentions(state, tokens[index].children ?? [], {
        id: (id) => (requirements.has(id) ? requirementHref(id, state.env) : undefined),
        code: (name) => {
          if (reasons.has(name)) return state.env.relativePath === ERRORS_PAGE ? `#${name}` : `${routeOf(ERRORS_PAGE)}#${name}`;
          const anchor = protocol.byName.get(name);
          return anchor === undefined ? undefined : referenceHref(anchor, state.env);
        },
      });
    }
  });

  md.core.ruler.push("continuity_reference", (state) => {
    if (state.env.relativePath === ERRORS_PAGE) anchorReasonRows(state.tokens, reasons);
    if (state.env.relativePath === REFERENCE_PAGE) enrichReference(state, protocol, requirementHref);
  });

  const fence = md.renderer.rules.fence;
  md.renderer.rules.fence = (tokens, index, options, env, self) => {
    const token = tokens[index];
    if (token.info.trim() === "mermaid") return `<MermaidDiagram code="${encodeURIComponent(token.content)}" />\n`;
    return fence(tokens, index, options, env, self);
  };
}

function forEachInline(tokens, visit) {
  for (const token of tokens) if (token.type === "inline" && token.children !== null) visit(token.children);
}

function splitHash(href) {
  const at = href.indexOf("#");
  return at === -1 ? [href, ""] : [href.slice(0, at), href.slice(at)];
}

function linkOpen(state, href, className) {
  const token = new state.Token("link_open", "a", 1);
  token.attrSet("href", href);
  if (className !== undefined) token.attrSet("class", className);
  return token;
}

function matchingClose(tokens, openIndex) {
  let depth = 0;
  for (let index = openIndex; index < tokens.length; index++) {
    if (tokens[index].type === "list_item_open") depth++;
    if (tokens[index].type === "list_item_close" && --depth === 0) return index;
  }
  throw new Error("unbalanced list item");
}

function escapeHtml(text) {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function testedByHtml(id, caseIds, level) {
  if (caseIds.length === 0) {
    return `<div class="requirement-tests requirement-untested">No conformance case tests ${id} yet${level === "MUST" ? "" : ` (it is a ${level})`}.</div>\n`;
  }
  const links = caseIds.map((caseId) => `<a href="/conformance/cases#${caseAnchor(caseId)}"><code>${escapeHtml(caseId)}</code></a>`);
  return `<div class="requirement-tests">Tested by ${links.join(", ")}</div>\n`;
}

/**
 * Outside links: requirement IDs in text and protocol names in code spans become links.
 * `resolve.id(id)` / `resolve.code(name)` give the href, or undefined to leave it alone.
 */
function linkMentions(state, children, resolve) {
  const out = [];
  let depth = 0;
  for (const token of children) {
    if (token.type === "link_open") depth++;
    if (token.type === "link_close") depth--;
    if (depth > 0 || (token.type !== "text" && token.type !== "code_inline")) {
      out.push(token);
      continue;
    }
    if (token.type === "code_inline") {
      const href = resolve.code(token.content) ?? (REQUIREMENT_ID.test(token.content) ? resolve.id(token.content) : undefined);
      if (href === undefined) out.push(token);
      else out.push(linkOpen(state, href), token, new state.Token("link_close", "a", -1));
      continue;
    }
    let last = 0;
    for (const match of token.content.matchAll(ID_MENTION)) {
      const href = resolve.id(match[1]);
      if (href === undefined) continue;
      if (match.index > last) out.push(textToken(state, token.content.slice(last, match.index)));
      out.push(linkOpen(state, href), textToken(state, match[1]), new state.Token("link_close", "a", -1));
      last = match.index + match[1].length;
    }
    if (last === 0) out.push(token);
    else if (last < token.content.length) out.push(textToken(state, token.content.slice(last)));
  }
  return out;
}

function textToken(state, content) {
  const token = new state.Token("text", "", 0);
  token.content = content;
  return token;
}

/** The reason table of errors.md: each row whose first cell is a reason gets it as its id. */
function anchorReasonRows(tokens, reasons) {
  for (let index = 0; index < tokens.length; index++) {
    if (tokens[index].type !== "tr_open") continue;
    const cell = tokens[index + 2];
    const name = cell?.type === "inline" ? /^`([A-Z_]+)`$/.exec(cell.content)?.[1] : undefined;
    if (name !== undefined && reasons.has(name)) tokens[index].attrSet("id", name);
  }
}

/**
 * The protocol reference: anchors on field and value rows, the field name a link to its own
 * row, and after every element's heading the requirements and spec sections that govern it
 * and the methods and fields that use it.
 */
function enrichReference(state, protocol, requirementHref) {
  const tokens = state.tokens;
  let current;
  for (let index = 0; index < tokens.length; index++) {
    const token = tokens[index];
    // scripts/reference.mjs puts `<a id="…"></a>` alone on a line before each element's heading.
    const anchor = token.type === "inline" || token.type === "html_block" ? /^<a id="([^"]+)"><\/a>$/.exec(token.content.trim())?.[1] : undefined;
    if (anchor !== undefined) {
      current = protocol.elements.has(anchor) ? anchor : undefined;
      continue;
    }
    if (token.type === "heading_close" && current !== undefined) {
      const html = governanceHtml(protocol.elements.get(current), state.env, requirementHref);
      if (html !== "") {
        const block = new state.Token("html_block", "", 0);
        block.content = html;
        tokens.splice(index + 1, 0, block);
        index++;
      }
      continue;
    }
    if (token.type === "tr_open" && current !== undefined) {
      const cell = tokens[index + 2];
      const name = cell?.type === "inline" ? /^`([A-Za-z0-9_]+)`$/.exec(cell.content)?.[1] : undefined;
      if (name === undefined) continue;
      const rowAnchor = referenceAnchor(`${protocol.elements.get(current).fullName}.${name}`);
      const row = protocol.elements.get(rowAnchor);
      if (row === undefined) continue;
      token.attrSet("id", rowAnchor);
      const at = cell.children.findIndex((child) => child.type === "code_inline");
      if (cell.children[at - 1]?.type === "link_open") {
        cell.children[at - 1].attrSet("href", `#${rowAnchor}`);
      } else {
        cell.children.splice(at, 1, linkOpen(state, `#${rowAnchor}`, "reference-self"), cell.children[at], new state.Token("link_close", "a", -1));
      }
      if (row.requirements.length > 0) {
        const lastCell = lastInlineOfRow(tokens, index);
        lastCell.children.push(textToken(state, " "), ...inlineLinks(state, row.requirements.map((id) => [id, requirementHref(id, state.env)]), "Spec: "));
      }
    }
  }
}

function lastInlineOfRow(tokens, trIndex) {
  let last;
  for (let index = trIndex; index < tokens.length && tokens[index].type !== "tr_close"; index++) if (tokens[index].type === "inline") last = tokens[index];
  return last;
}

function inlineLinks(state, links, prefix) {
  const out = [textToken(state, prefix)];
  links.forEach(([label, href], position) => {
    if (position > 0) out.push(textToken(state, ", "));
    out.push(linkOpen(state, href), textToken(state, label), new state.Token("link_close", "a", -1));
  });
  return out;
}

function governanceHtml(element, env, requirementHref) {
  const lines = [];
  if (element.requirements.length > 0) {
    lines.push(`<dt>Requirements</dt><dd>${element.requirements.map((id) => `<a href="${requirementHref(id, env)}">${id}</a>`).join(", ")}</dd>`);
  }
  if (element.sections.length > 0) {
    lines.push(`<dt>Spec</dt><dd>${element.sections.map((section) => `<a href="${routeOf(section.page)}#${section.slug}">${escapeHtml(section.title)}</a>`).join(" · ")}</dd>`);
  }
  if (element.usedBy.length > 0) {
    const uses = element.usedBy.map(({ anchor, label, role }) => `<a href="#${anchor}"><code>${escapeHtml(label)}</code></a>${role === "field" ? "" : ` (${role})`}`);
    lines.push(`<dt>Used by</dt><dd>${uses.join(", ")}</dd>`);
  }
  return lines.length === 0 ? "" : `<dl class="reference-links">${lines.join("")}</dl>\n`;
}
