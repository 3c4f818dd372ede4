import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

interface Requirement {
  id: string;
  level: string;
  profile: string;
  file: string;
  section: string;
  text: string;
}
interface Collected {
  requirements: Requirement[];
  problems: string[];
}
interface ErrorRow {
  reason: string;
  code: string;
  metadata: string[];
  line: number;
}
interface ProtoReason {
  reason: string;
  code: string;
  metadata: string[];
}

// The tools are plain ESM scripts (run by `node` without a build step), so they are loaded
// by URL and given their types here.
const tool = (await import(new URL("./requirements.mjs", import.meta.url).href)) as {
  collectRequirements(files: Record<string, string>): Collected;
  requirementSetDigest(requirements: readonly Pick<Requirement, "id" | "level" | "text">[]): string;
  renderRequirementsJson(requirements: readonly Requirement[]): string;
  readSpecDirectory(dir: string): Record<string, string>;
  parseErrorTable(source: string): ErrorRow[];
  checkErrorTable(rows: ErrorRow[], reasons: ProtoReason[]): string[];
};
const reference = (await import(new URL("./reference.mjs", import.meta.url).href)) as {
  buildDescriptorSet(root: string): unknown;
  errorReasons(descriptorSet: unknown): ProtoReason[];
};

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

function spec(profile: string, body: string): string {
  return `---\nprofile: ${profile}\n---\n\n${body}`;
}

const validAppends = spec(
  "core",
  `# Appends

## Client sequence

Each device numbers its appends.

- **APPEND-001** (MUST) A gap MUST fail with \`CLIENT_SEQUENCE_GAP\`
  and append nothing.
- **APPEND-002** (SHOULD) A server SHOULD answer quickly; it MAY batch.

See APPEND-001 for the gap rule.
`,
);

describe("collectRequirements", () => {
  it("parses items, joins continuation lines and records file, section and profile", () => {
    const { requirements, problems } = tool.collectRequirements({ "appends.md": validAppends });
    expect(problems).toEqual([]);
    expect(requirements).toEqual([
      {
        id: "APPEND-001",
        level: "MUST",
        profile: "core",
        file: "appends.md",
        section: "Client sequence",
        text: "A gap MUST fail with `CLIENT_SEQUENCE_GAP` and append nothing.",
        line: 11,
      },
      {
        id: "APPEND-002",
        level: "SHOULD",
        profile: "core",
        file: "appends.md",
        section: "Client sequence",
        text: "A server SHOULD answer quickly; it MAY batch.",
        line: 13,
      },
    ]);
  });

  it("orders requirements by area order, then number, across files", () => {
    const { requirements, problems } = tool.collectRequirements({
      "z.md": spec("core", "- **GEN-002** (MUST) It MUST b.\n- **GEN-010** (MUST) It MUST c.\n"),
      "a.md": spec("identity", "- **ERASE-001** (MUST) It MUST a.\n- **GEN-001** (MUST) It MUST d.\n"),
    });
    expect(problems).toEqual([]);
    expect(requirements.map((requirement) => requirement.id)).toEqual(["GEN-001", "GEN-002", "GEN-010", "ERASE-001"]);
  });

  it("rejects a duplicate ID, even across files", () => {
    const { problems } = tool.collectRequirements({
      "a.md": spec("core", "- **STREAM-001** (MUST) It MUST work.\n"),
      "b.md": spec("core", "- **STREAM-001** (MUST) It MUST also work.\n"),
    });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/b\.md:5: duplicate ID STREAM-001 \(first defined at a\.md:5\)/);
  });

  it("rejects an item without a level", () => {
    const { requirements, problems } = tool.collectRequirements({
      "a.md": spec("core", "- **STREAM-001** A server MUST do it.\n"),
    });
    expect(requirements).toEqual([]);
    expect(problems.join("\n")).toMatch(/a\.md:5: malformed requirement item/);
  });

  it("rejects an unknown area and a malformed number", () => {
    const { problems } = tool.collectRequirements({
      "a.md": spec("core", "- **FOO-001** (MUST) It MUST work.\n- **STREAM-01** (MUST) It MUST work.\n"),
    });
    expect(problems.join("\n")).toMatch(/a\.md:5: unknown area "FOO" in FOO-001/);
    expect(problems.join("\n")).toMatch(/a\.md:6: malformed requirement item/);
  });

  it("rejects a level that is not the statement's strongest key word, or has none", () => {
    const { problems } = tool.collectRequirements({
      "a.md": spec("core", "- **SUB-001** (SHOULD) It MUST work.\n- **SUB-002** (MAY) It works.\n"),
    });
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/SUB-001 is marked \(SHOULD\) but its strongest key word is MUST/);
    expect(problems[1]).toMatch(/SUB-002 is marked \(MAY\) but its statement has no BCP 14 key word/);
  });

  it("rejects missing front matter and unknown profiles", () => {
    const { problems } = tool.collectRequirements({
      "a.md": "# No front matter\n",
      "b.md": spec("e2e", "Text.\n"),
      "c.md": "---\ntitle: x\n---\n",
    });
    expect(problems).toEqual([
      expect.stringMatching(/^a\.md:1: missing front matter/),
      expect.stringMatching(/^b\.md:1: unknown profile "e2e"/),
      expect.stringMatching(/^c\.md:1: front matter has no `profile`/),
    ]);
  });

  it("flags normative key words outside items, but not in code or in lower case", () => {
    const { problems } = tool.collectRequirements({
      "a.md": spec(
        "core",
        [
          "A client must retry; the word `MUST` is quoted here.",
          "",
          "```text",
          "a server MUST inside a fence is an example",
          "```",
          "",
          "| Reason | Meaning |",
          "|---|---|",
          "| `EXPECTED_VERSION_REQUIRED` | fine, it is one identifier |",
          "",
          "Servers SHOULD cache this.",
          "",
        ].join("\n"),
      ),
    });
    expect(problems).toEqual([expect.stringMatching(/^a\.md:15: normative key word SHOULD outside a requirement item/)]);
  });

  it("rejects references to undefined requirements", () => {
    const { problems } = tool.collectRequirements({
      "a.md": spec("core", "- **GEN-001** (MUST) It MUST follow GEN-002 and APPEND-001.\n- **APPEND-001** (MUST) It MUST.\n"),
    });
    expect(problems).toEqual([expect.stringMatching(/a\.md:5: reference to undefined requirement GEN-002/)]);
  });

  it("keeps HASH requirements to hashing.md, whose owner defines them", () => {
    const { problems } = tool.collectRequirements({
      "hashing.md": spec("core", "- **HASH-001** (MUST) It MUST hash.\n"),
      "a.md": spec("core", "- **HASH-002** (MUST) It MUST hash too.\n"),
    });
    expect(problems).toEqual([expect.stringMatching(/a\.md:5: HASH-002: HASH requirements are defined only in hashing\.md/)]);
  });

  it("ends an item at a blank line, so following prose is checked as prose", () => {
    const { requirements, problems } = tool.collectRequirements({
      "a.md": spec("core", "- **GEN-001** (MUST) It MUST work.\n\n  Indented prose MAY not belong to the item.\n"),
    });
    expect(requirements[0]?.text).toBe("It MUST work.");
    expect(problems).toEqual([expect.stringMatching(/a\.md:7: normative key word MAY outside/)]);
  });
});

describe("requirementSetDigest", () => {
  const set = [
    { id: "GEN-002", level: "SHOULD", text: "Second SHOULD." },
    { id: "GEN-001", level: "MUST", text: "First MUST." },
  ];

  it("is SHA-256 over `id TAB level TAB text LF` in ID order, as docs/spec/README.md defines", () => {
    const expected = createHash("sha256").update("GEN-001\tMUST\tFirst MUST.\nGEN-002\tSHOULD\tSecond SHOULD.\n").digest("hex");
    expect(tool.requirementSetDigest(set)).toBe(`sha256:${expected}`);
  });

  it("changes when a statement or level changes, and not when the order or profile does", () => {
    const base = tool.requirementSetDigest(set);
    expect(tool.requirementSetDigest([...set].reverse())).toBe(base);
    expect(tool.requirementSetDigest([{ ...set[0]!, text: "Second SHOULD!" }, set[1]!])).not.toBe(base);
    expect(tool.requirementSetDigest([{ ...set[0]!, level: "MAY" }, set[1]!])).not.toBe(base);
  });
});

describe("renderRequirementsJson", () => {
  it("writes the array of {id, level, profile, file, section, text} the conformance runner reads", () => {
    const { requirements } = tool.collectRequirements({ "appends.md": validAppends });
    const parsed = JSON.parse(tool.renderRequirementsJson(requirements)) as unknown;
    expect(Array.isArray(parsed)).toBe(true);
    expect((parsed as Record<string, unknown>[])[0]).toStrictEqual({
      id: "APPEND-001",
      level: "MUST",
      profile: "core",
      file: "appends.md",
      section: "Client sequence",
      text: "A gap MUST fail with `CLIENT_SEQUENCE_GAP` and append nothing.",
    });
  });
});

describe("the error table check", () => {
  const reasons: ProtoReason[] = [
    { reason: "VERSION_CONFLICT", code: "ABORTED", metadata: ["headVersion", "headHash"] },
    { reason: "TOKEN_MISSING", code: "UNAUTHENTICATED", metadata: [] },
  ];
  const table = (rows: string[]): string =>
    ["| Reason | Code | Metadata | Meaning | Action |", "|---|---|---|---|---|", ...rows].join("\n");

  it("accepts a table that matches the proto, metadata in any order", () => {
    const rows = tool.parseErrorTable(
      table([
        "| `VERSION_CONFLICT` | `ABORTED` | `headHash`, `headVersion` | stale | rebase |",
        "| `TOKEN_MISSING` | `UNAUTHENTICATED` | — | no token | exchange |",
      ]),
    );
    expect(tool.checkErrorTable(rows, reasons)).toEqual([]);
  });

  it("reports a wrong code, wrong metadata, an unknown reason and a missing one", () => {
    const rows = tool.parseErrorTable(
      table([
        "| `VERSION_CONFLICT` | `FAILED_PRECONDITION` | `headVersion` | stale | rebase |",
        "| `TOKEN_LOST` | `UNAUTHENTICATED` | — | no token | exchange |",
      ]),
    );
    const problems = tool.checkErrorTable(rows, reasons);
    expect(problems).toEqual([
      expect.stringMatching(/VERSION_CONFLICT is sent with ABORTED according to errors\.proto, not FAILED_PRECONDITION/),
      expect.stringMatching(/VERSION_CONFLICT metadata is \[headHash, headVersion\] according to errors\.proto, not \[headVersion\]/),
      expect.stringMatching(/reason TOKEN_LOST is not in errors\.proto/),
      expect.stringMatching(/reason TOKEN_MISSING of errors\.proto is missing from the table/),
    ]);
  });
});

describe("the committed spec", () => {
  it("validates, and its error table matches errors.proto", () => {
    const files = tool.readSpecDirectory(join(root, "docs/spec"));
    const { requirements, problems } = tool.collectRequirements(files);
    const tableProblems = tool.checkErrorTable(
      tool.parseErrorTable(files["errors.md"] ?? ""),
      reference.errorReasons(reference.buildDescriptorSet(root)),
    );
    expect([...problems, ...tableProblems]).toEqual([]);
    const coreAndIdentity = requirements.filter((requirement) => requirement.profile !== "portability");
    expect(coreAndIdentity.length).toBeGreaterThan(80);
  });

  it("has a fresh requirements.json (`--check` passes)", () => {
    const output = execFileSync(process.execPath, [join(root, "scripts/requirements.mjs"), "--check"], {
      cwd: root,
      encoding: "utf8",
    });
    expect(output).toMatch(/requirements\.json is fresh/);
  });
});
