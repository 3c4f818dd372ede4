// The two pages the site makes from data rather than from a Markdown file: every requirement
// by ID, and every conformance case with the requirements it tests. Both are built from the
// same sources as the rest of the site (lib/sources.mjs), at build time.
import { AREAS } from "../../../scripts/requirements.mjs";
import { caseAnchor } from "./markdown.mjs";
import { casesByRequirement, loadCases, loadRequirements, readRepoFile, routeOf } from "./sources.mjs";

/** Area code → its name, from the "Areas:" paragraph of docs/spec/README.md. */
function areaNames() {
  const paragraph = /^Areas:([\s\S]*?)\n\n/m.exec(readRepoFile("docs/spec/README.md"))?.[1] ?? "";
  return new Map([...paragraph.replace(/\s+/g, " ").matchAll(/`([A-Z]+)` ([^,.`]+)/g)].map((match) => [match[1], match[2].trim()]));
}

/** Links in a requirement's text are relative to its spec file; this page lives in docs/requirements/. */
function rebaseLinks(text, file) {
  return text.replace(/\]\((?![a-z][a-z0-9+.-]*:|\/)([^)\s]*)\)/gi, (_, target) => `](../spec/${target.startsWith("#") ? `${file}${target}` : target})`);
}

/** The title of a spec page, without its subtitle: `# Portability: bundles and …` → `Portability`. */
function specTitle(file) {
  return (/^#\s+(.*)$/m.exec(readRepoFile(`docs/spec/${file}`))?.[1] ?? file).replace(/:.*$/, "").replace(/`/g, "");
}

const capitalize = (text) => `${text[0].toUpperCase()}${text.slice(1)}`;

export function requirementsPage() {
  const names = areaNames();
  const cases = casesByRequirement();
  const requirements = loadRequirements();
  const out = [
    "---",
    "outline: [2, 2]",
    "---",
    "",
    "# Every requirement",
    "",
    `The ${requirements.length} requirements of the specification, by area, each under its ID. An ID names one rule`,
    "forever: this page is where a conformance report sends you for a failure, and each entry",
    "links to the rule in its place in the spec and to the conformance cases that test it.",
    "",
  ];
  for (const area of AREAS) {
    const inArea = requirements.filter((requirement) => requirement.id.startsWith(`${area}-`));
    if (inArea.length === 0) continue;
    out.push(`## ${area}: ${capitalize(names.get(area) ?? area.toLowerCase())} {#area-${area.toLowerCase()}}`, "");
    for (const requirement of inArea) {
      const tested = cases.get(requirement.id) ?? [];
      out.push(`### ${requirement.id} {#${requirement.id}}`, "");
      out.push(`**${requirement.level}** · profile \`${requirement.profile}\` · in [${specTitle(requirement.file)} › ${requirement.section}](${routeOf(requirement.page)}#${requirement.id})`, "");
      out.push(rebaseLinks(requirement.text, requirement.file), "");
      out.push(
        tested.length === 0
          ? `<div class="requirement-tests requirement-untested">No conformance case tests ${requirement.id} yet.</div>`
          : `<div class="requirement-tests">Tested by ${tested.map((id) => `<a href="/conformance/cases#${caseAnchor(id)}"><code>${id}</code></a>`).join(", ")}</div>`,
        "",
      );
    }
  }
  return out.join("\n");
}

export function casesPage() {
  const cases = loadCases();
  const known = new Set(loadRequirements().map((requirement) => requirement.id));
  const out = [
    "# Conformance cases",
    "",
    `The ${cases.length} cases of the suite, in the order a report lists them, with the requirements each one`,
    "proves. A case's level is that of the strictest requirement it names; `--filter` selects cases",
    "by id (`--filter '^append\\.'`). This list is the suite's own (`conformance/src/cases`).",
    "",
  ];
  let area;
  for (const conformanceCase of cases) {
    const caseArea = conformanceCase.id.split(".")[0];
    if (caseArea !== area) {
      area = caseArea;
      out.push(`## ${caseArea}`, "");
    }
    const requirements = conformanceCase.requirements.map((id) => (known.has(id) ? id : `${id} (not in the spec)`)).join(", ");
    out.push(`- <span id="${caseAnchor(conformanceCase.id)}" class="case-anchor"></span>\`${conformanceCase.id}\` (${conformanceCase.profile}): ${requirements}`);
  }
  out.push("");
  return out.join("\n");
}
