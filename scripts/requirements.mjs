// Turns the normative spec (docs/spec/*.md) into docs/spec/requirements.json, the list of
// requirement IDs that the conformance suite and the implementations cite.
//
//   node scripts/requirements.mjs --write   validate, then (re)write requirements.json
//   node scripts/requirements.mjs --check   validate, and fail if requirements.json is stale
//   node scripts/requirements.mjs --digest  validate, and print the requirement set digest
//
// Validation is strict on purpose: an ID is a promise to every implementer, so a duplicate,
// an unknown area, a missing level or a normative key word outside a requirement item must
// stop the build rather than slip into a published list. The error table in errors.md is
// also checked against proto/continuity/v1/errors.proto, so the two cannot drift apart.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { basename, dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

/** Requirement areas, in the order requirements.json lists them. */
export const AREAS = [
  "GEN", "VER", "ERR", "AUTH", "TOKEN", "ISO", "STREAM", "APPEND", "DELTA", "SNAP", "COMPACT",
  "CKPT", "RESTORE", "HANDOFF", "SUB", "HASH", "LIMIT", "LINK", "DEVICE", "GRANT", "ERASE",
  "PORT", "SEC",
];

/** Profiles a spec file may declare in its front matter. */
export const PROFILES = ["core", "identity", "portability"];

/** Levels of a requirement item, strongest first. */
export const LEVELS = ["MUST", "SHOULD", "MAY"];

/** Areas whose IDs only one file may define, because another engineer owns that area. */
const AREA_OWNERS = { HASH: "hashing.md" };

// BCP 14 key words and the level each one implies. `NOT` forms imply the same level.
const KEYWORD_LEVEL = {
  MUST: "MUST", REQUIRED: "MUST", SHALL: "MUST",
  SHOULD: "SHOULD", RECOMMENDED: "SHOULD",
  MAY: "MAY", OPTIONAL: "MAY",
};
const KEYWORD_RE = /(?<![A-Za-z0-9_`-])(MUST|REQUIRED|SHALL|SHOULD|RECOMMENDED|MAY|OPTIONAL)(?![A-Za-z0-9_-])/g;

const ITEM_RE = /^- \*\*([A-Z]+)-(\d{3})\*\* \((MUST|SHOULD|MAY)\) (\S.*)$/;
// Anything that looks like an attempt at an item, so that a typo is reported rather than
// silently treated as prose.
const ITEM_ATTEMPT_RE = /^\s*[-*+] +\*\*\s*[A-Za-z]+-\d+/;
const ID_REFERENCE_RE = new RegExp(`(?<![A-Za-z0-9_-])(${AREAS.join("|")})-(\\d{3})(?![0-9])`, "g");

/**
 * Removes inline code spans, so that key words and IDs quoted as code (`MUST`) are neither
 * normative nor references.
 */
function stripInlineCode(line) {
  return line.replace(/(`+)[\s\S]*?\1/g, " ");
}

function parseFrontMatter(lines, file, problems) {
  if (lines[0] !== "---") {
    problems.push(`${file}:1: missing front matter (a first line \`---\`, then \`profile: core|identity|portability\`)`);
    return { profile: undefined, bodyStart: 0 };
  }
  const end = lines.indexOf("---", 1);
  if (end === -1) {
    problems.push(`${file}:1: front matter is not closed by a \`---\` line`);
    return { profile: undefined, bodyStart: lines.length };
  }
  const fields = new Map();
  for (let i = 1; i < end; i++) {
    const match = /^([A-Za-z][\w-]*):\s*(.*?)\s*$/.exec(lines[i] ?? "");
    if (match === null) {
      problems.push(`${file}:${i + 1}: front matter line is not \`key: value\``);
      continue;
    }
    fields.set(match[1], match[2]);
  }
  const profile = fields.get("profile");
  if (profile === undefined) {
    problems.push(`${file}:1: front matter has no \`profile\``);
  } else if (!PROFILES.includes(profile)) {
    problems.push(`${file}:1: unknown profile "${profile}" (expected one of ${PROFILES.join(", ")})`);
  }
  return { profile: PROFILES.includes(profile) ? profile : undefined, bodyStart: end + 1 };
}

function strongestLevel(text) {
  let best;
  for (const match of stripInlineCode(text).matchAll(KEYWORD_RE)) {
    const level = KEYWORD_LEVEL[match[1]];
    if (best === undefined || LEVELS.indexOf(level) < LEVELS.indexOf(best)) best = level;
  }
  return best;
}

/**
 * Parses one spec file. Returns its profile, its requirement items, every ID it mentions
 * (for the dangling-reference check) and the problems found; never throws on bad input.
 */
export function parseSpecFile(file, source) {
  const problems = [];
  const lines = source.replace(/\r\n?/g, "\n").split("\n");
  const { profile, bodyStart } = parseFrontMatter(lines, file, problems);
  const requirements = [];
  const references = [];
  let section = "";
  let fence;
  let current;

  const finishItem = () => {
    if (current === undefined) return;
    const text = current.parts.join(" ").replace(/\s+/g, " ").trim();
    const strongest = strongestLevel(text);
    if (strongest === undefined) {
      problems.push(`${file}:${current.line}: ${current.id} is marked (${current.level}) but its statement has no BCP 14 key word`);
    } else if (strongest !== current.level) {
      problems.push(`${file}:${current.line}: ${current.id} is marked (${current.level}) but its strongest key word is ${strongest}`);
    }
    requirements.push({ id: current.id, level: current.level, profile, file, section, text, line: current.line });
    current = undefined;
  };

  for (let index = bodyStart; index < lines.length; index++) {
    const line = lines[index] ?? "";
    const lineNumber = index + 1;
    const fenceMatch = /^\s*(`{3,}|~{3,})/.exec(line);
    if (fence !== undefined) {
      if (fenceMatch !== null && fenceMatch[1][0] === fence[0] && fenceMatch[1].length >= fence.length) fence = undefined;
      continue;
    }
    if (fenceMatch !== null) {
      finishItem();
      fence = fenceMatch[1];
      continue;
    }

    if (current !== undefined && /^ {2,}\S/.test(line)) {
      current.parts.push(line.trim());
      collectReferences(line, lineNumber);
      continue;
    }
    finishItem();

    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading !== null) section = heading[1];

    const item = ITEM_RE.exec(line);
    if (item !== null) {
      const [, area, number, level, rest] = item;
      const id = `${area}-${number}`;
      if (!AREAS.includes(area)) {
        problems.push(`${file}:${lineNumber}: unknown area "${area}" in ${id} (known: ${AREAS.join(", ")})`);
      } else if (AREA_OWNERS[area] !== undefined && AREA_OWNERS[area] !== file) {
        problems.push(`${file}:${lineNumber}: ${id}: ${area} requirements are defined only in ${AREA_OWNERS[area]}`);
      }
      current = { id, level, line: lineNumber, parts: [rest] };
      collectReferences(rest, lineNumber, id);
      continue;
    }
    if (ITEM_ATTEMPT_RE.test(line)) {
      problems.push(`${file}:${lineNumber}: malformed requirement item; expected \`- **AREA-NNN** (MUST|SHOULD|MAY) statement\`: ${line.trim()}`);
      continue;
    }
    const prose = stripInlineCode(line);
    for (const match of prose.matchAll(KEYWORD_RE)) {
      problems.push(`${file}:${lineNumber}: normative key word ${match[1]} outside a requirement item (use lower case for guidance, or make it an item)`);
    }
    collectReferences(line, lineNumber);
  }
  finishItem();
  if (fence !== undefined) problems.push(`${file}: unclosed code fence`);
  return { profile, requirements, references, problems };

  function collectReferences(text, lineNumber, self) {
    for (const match of stripInlineCode(text).matchAll(ID_REFERENCE_RE)) {
      const id = `${match[1]}-${match[2]}`;
      if (id !== self) references.push({ id, file, line: lineNumber });
    }
  }
}

function compareRequirements(a, b) {
  const [areaA, numberA] = a.id.split("-");
  const [areaB, numberB] = b.id.split("-");
  return AREAS.indexOf(areaA) - AREAS.indexOf(areaB) || Number(numberA) - Number(numberB);
}

/**
 * SHA-256 over the requirement set, as docs/spec/README.md defines it: for every requirement
 * in code-point order of its ID, `id TAB level TAB text LF`. A conformance report carries it
 * to say which revision of the spec it checked.
 */
export function requirementSetDigest(requirements) {
  const ordered = [...requirements].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const hash = createHash("sha256");
  for (const { id, level, text } of ordered) hash.update(`${id}\t${level}\t${text}\n`, "utf8");
  return `sha256:${hash.digest("hex")}`;
}

/**
 * Parses and validates every spec file of a directory. `files` maps file name to content,
 * so that tests can validate a spec without touching the disk.
 */
export function collectRequirements(files) {
  const problems = [];
  const requirements = [];
  const references = [];
  for (const file of Object.keys(files).sort()) {
    const parsed = parseSpecFile(file, files[file]);
    problems.push(...parsed.problems);
    requirements.push(...parsed.requirements);
    references.push(...parsed.references);
  }
  const seen = new Map();
  for (const requirement of requirements) {
    const first = seen.get(requirement.id);
    if (first !== undefined) {
      problems.push(`${requirement.file}:${requirement.line}: duplicate ID ${requirement.id} (first defined at ${first.file}:${first.line})`);
    } else {
      seen.set(requirement.id, requirement);
    }
  }
  for (const reference of references) {
    if (!seen.has(reference.id)) {
      problems.push(`${reference.file}:${reference.line}: reference to undefined requirement ${reference.id}`);
    }
  }
  const unique = [...seen.values()].sort(compareRequirements);
  return { requirements: unique, problems };
}

/**
 * The content of requirements.json for a validated requirement list: the JSON array of
 * `{id, level, profile, file, section, text}` that the design note fixes and the conformance
 * runner reads. The set digest is not stored in it (an array has no place for it); consumers
 * compute it from the entries as docs/spec/README.md defines, or ask `--digest`.
 */
export function renderRequirementsJson(requirements) {
  const entries = requirements.map(({ id, level, profile, file, section, text }) => ({ id, level, profile, file, section, text }));
  return `${JSON.stringify(entries, null, 2)}\n`;
}

/** Reads every `*.md` file of the spec directory. */
export function readSpecDirectory(specDir) {
  const files = {};
  for (const name of readdirSync(specDir).filter((entry) => entry.endsWith(".md")).sort()) {
    files[name] = readFileSync(join(specDir, name), "utf8");
  }
  return files;
}

/**
 * Parses the reason table of errors.md: rows whose first cell is a reason in backticks.
 * Returns `{ reason, code, metadata: string[], line }` per row.
 */
export function parseErrorTable(source) {
  const rows = [];
  const lines = source.split("\n");
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index] ?? "";
    if (!/^\|\s*`[A-Z][A-Z0-9_]*`\s*\|/.test(line)) continue;
    const cells = line.split("|").slice(1, -1).map((cell) => cell.trim());
    const unquote = (cell) => (cell ?? "").replace(/`/g, "").trim();
    rows.push({
      reason: unquote(cells[0]),
      code: unquote(cells[1]),
      metadata: [...(cells[2] ?? "").matchAll(/`([^`]+)`/g)].map((match) => match[1]).sort(),
      line: index + 1,
    });
  }
  return rows;
}

/**
 * Compares the reason table of errors.md with the reasons of errors.proto
 * (`{ reason, code, metadata }` as reference.mjs extracts them). Returns the problems.
 */
export function checkErrorTable(rows, protoReasons, file = "errors.md") {
  const problems = [];
  const byReason = new Map(protoReasons.map((reason) => [reason.reason, reason]));
  const listed = new Set();
  for (const row of rows) {
    const expected = byReason.get(row.reason);
    if (expected === undefined) {
      problems.push(`${file}:${row.line}: reason ${row.reason} is not in errors.proto`);
      continue;
    }
    if (listed.has(row.reason)) problems.push(`${file}:${row.line}: reason ${row.reason} is listed twice`);
    listed.add(row.reason);
    if (row.code !== expected.code) {
      problems.push(`${file}:${row.line}: ${row.reason} is sent with ${expected.code} according to errors.proto, not ${row.code}`);
    }
    const want = [...expected.metadata].sort().join(", ");
    if (row.metadata.join(", ") !== want) {
      problems.push(`${file}:${row.line}: ${row.reason} metadata is [${want}] according to errors.proto, not [${row.metadata.join(", ")}]`);
    }
  }
  for (const reason of protoReasons) {
    if (!listed.has(reason.reason)) problems.push(`${file}: reason ${reason.reason} of errors.proto is missing from the table`);
  }
  return problems;
}

async function main(argv) {
  const root = join(dirname(fileURLToPath(import.meta.url)), "..");
  const mode = ["write", "check", "digest"].find((candidate) => argv.includes(`--${candidate}`));
  if (mode === undefined) {
    process.stderr.write("usage: node scripts/requirements.mjs --write | --check | --digest\n");
    return 2;
  }
  const specDir = join(root, "docs/spec");
  const output = join(specDir, "requirements.json");
  const files = readSpecDirectory(specDir);
  const { requirements, problems } = collectRequirements(files);
  if (files["errors.md"] !== undefined) {
    const { buildDescriptorSet, errorReasons } = await import("./reference.mjs");
    problems.push(...checkErrorTable(parseErrorTable(files["errors.md"]), errorReasons(buildDescriptorSet(root))));
  }
  if (!files["hashing.md"]) {
    process.stderr.write("requirements: note: docs/spec/hashing.md does not exist yet; HASH requirements are missing\n");
  }
  if (problems.length > 0) {
    process.stderr.write(`requirements: ${problems.length} problem(s) in ${relative(root, specDir)}:\n`);
    for (const problem of problems) process.stderr.write(`  ${problem}\n`);
    return 1;
  }
  if (mode === "digest") {
    process.stdout.write(`${requirementSetDigest(requirements)}\n`);
    return 0;
  }
  const rendered = renderRequirementsJson(requirements);
  const current = existsSync(output) ? readFileSync(output, "utf8") : undefined;
  if (mode === "check") {
    if (current !== rendered) {
      process.stderr.write(`requirements: ${relative(root, output)} is stale; run \`node scripts/requirements.mjs --write\`\n`);
      return 1;
    }
    process.stdout.write(`requirements: ${requirements.length} requirements, ${basename(output)} is fresh (${requirementSetDigest(requirements)})\n`);
    return 0;
  }
  if (current !== rendered) writeFileSync(output, rendered);
  process.stdout.write(`requirements: ${requirements.length} requirements written to ${relative(root, output)} (${requirementSetDigest(requirements)})\n`);
  return 0;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = await main(process.argv.slice(2));
}
