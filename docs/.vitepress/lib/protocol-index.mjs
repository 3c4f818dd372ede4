// An index of the protocol for cross-links: every service, method, message, field, enum and
// enum value of continuity.v1 with its anchor in the protocol reference, the names prose uses
// for it (`CreateMigration`, `ExportSubjectRequest.after`, `SUBJECT_MOVED`), what refers to
// it, and which requirements and spec sections mention it.
import { githubSlug, loadDescriptorSet, loadRequirements, readRepoFile, referenceAnchor } from "./sources.mjs";

const PACKAGE = "continuity.v1";

const short = (fullName) => fullName.replace(`.${PACKAGE}.`, "");
const snakeToCamel = (name) => name.replace(/_([a-z0-9])/g, (_, letter) => letter.toUpperCase());

/**
 * Builds the index. `elements` maps a reference anchor to `{ fullName, kind, label, names,
 * usedBy: [{ anchor, label }], requirements: [id], sections: [{ page, slug, title }] }`;
 * `byName` maps a name as prose writes it to the anchor (names used by two elements are left
 * out, so a link is never a guess).
 */
export function buildProtocolIndex() {
  const elements = new Map();
  const add = (fullName, kind, names) => {
    const anchor = referenceAnchor(fullName);
    if (elements.has(anchor)) throw new Error(`protocol reference: two elements share the anchor ${anchor}`);
    elements.set(anchor, { fullName, kind, label: short(fullName), names, usedBy: [], requirements: [], sections: [] });
    return anchor;
  };
  const references = [];
  const files = (loadDescriptorSet().file ?? []).filter((file) => file.package === PACKAGE);

  const visitEnum = (enumType, fullName) => {
    add(fullName, "enum", [short(fullName)]);
    for (const value of enumType.value ?? []) {
      const names = [value.name];
      if (short(fullName) === "ErrorReason" && value.name !== "ERROR_REASON_UNSPECIFIED") names.push(value.name.replace(/^ERROR_REASON_/, ""));
      add(`${fullName}.${value.name}`, "enum value", names);
    }
  };
  const visitMessage = (message, fullName) => {
    if (message.options?.mapEntry) return;
    add(fullName, "message", [short(fullName)]);
    for (const field of message.field ?? []) {
      const label = `${short(fullName)}.${field.name}`;
      add(`${fullName}.${field.name}`, "field", [...new Set([label, `${short(fullName)}.${snakeToCamel(field.name)}`])]);
      if (field.typeName !== undefined) references.push({ target: field.typeName, from: `${fullName}.${field.name}`, role: "field" });
    }
    for (const nested of message.nestedType ?? []) visitMessage(nested, `${fullName}.${nested.name}`);
    for (const nested of message.enumType ?? []) visitEnum(nested, `${fullName}.${nested.name}`);
  };
  for (const file of files) {
    for (const message of file.messageType ?? []) visitMessage(message, `.${PACKAGE}.${message.name}`);
    for (const enumType of file.enumType ?? []) visitEnum(enumType, `.${PACKAGE}.${enumType.name}`);
  }
  for (const file of files) {
    for (const service of file.service ?? []) {
      const serviceName = `.${PACKAGE}.${service.name}`;
      add(serviceName, "service", [service.name]);
      for (const method of service.method ?? []) {
        const fullName = `${serviceName}.${method.name}`;
        add(fullName, "method", [method.name, `${service.name}.${method.name}`]);
        references.push({ target: method.inputType, from: fullName, role: "request" });
        references.push({ target: method.outputType, from: fullName, role: "response" });
      }
    }
  }
  for (const { target, from, role } of references) {
    const element = elements.get(referenceAnchor(target));
    if (element !== undefined) element.usedBy.push({ anchor: referenceAnchor(from), label: short(from), role });
  }

  const claims = new Map();
  for (const [anchor, element] of elements) {
    for (const name of element.names) claims.set(name, [...(claims.get(name) ?? []), anchor]);
  }
  const byName = new Map([...claims].filter(([, anchors]) => anchors.length === 1).map(([name, [anchor]]) => [name, anchor]));

  // Which requirements and which spec sections name each element in a code span.
  for (const requirement of loadRequirements()) {
    for (const name of codeSpans(requirement.text)) {
      const element = elements.get(byName.get(name));
      if (element !== undefined && !element.requirements.includes(requirement.id)) element.requirements.push(requirement.id);
    }
  }
  for (const requirement of uniqueFiles(loadRequirements())) {
    for (const section of specSections(requirement.file, requirement.page)) {
      for (const name of section.names) {
        const element = elements.get(byName.get(name));
        if (element !== undefined && !element.sections.some((known) => known.page === section.page && known.slug === section.slug)) {
          element.sections.push({ page: section.page, slug: section.slug, title: section.title });
        }
      }
    }
  }
  return { elements, byName };
}

function uniqueFiles(requirements) {
  const seen = new Map();
  for (const requirement of requirements) if (!seen.has(requirement.file)) seen.set(requirement.file, requirement);
  return [...seen.values()];
}

function codeSpans(text) {
  return [...text.matchAll(/`([^`\s]+)`/g)].map((match) => match[1]);
}

/** The sections (h2, h3) of a spec file with the code-span names their text mentions. */
function specSections(file, page) {
  const sections = [];
  const slugCounts = new Map();
  let current;
  let fenced = false;
  const title = /^#\s+(.*)$/m.exec(readRepoFile(`docs/spec/${file}`))?.[1] ?? file;
  for (const line of readRepoFile(`docs/spec/${file}`).split("\n")) {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    if (fenced) continue;
    const heading = /^(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading !== null) {
      const text = heading[2].replace(/`/g, "");
      const base = githubSlug(text);
      const seen = slugCounts.get(base) ?? 0;
      slugCounts.set(base, seen + 1);
      current = heading[1].length >= 2 ? { page, slug: seen === 0 ? base : `${base}-${seen}`, title: `${title} › ${text}`, names: new Set() } : undefined;
      if (current !== undefined) sections.push(current);
      continue;
    }
    if (current !== undefined) for (const name of codeSpans(line)) current.names.add(name);
  }
  return sections;
}
