import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";

interface FieldDescriptor {
  name: string;
  number: number;
}
interface MessageDescriptor {
  name: string;
  field?: FieldDescriptor[];
  nestedType?: MessageDescriptor[];
  options?: { mapEntry?: boolean };
}
interface EnumDescriptor {
  name: string;
  value: { name: string; number?: number }[];
}
interface FileDescriptor {
  name: string;
  package: string;
  messageType?: MessageDescriptor[];
  enumType?: EnumDescriptor[];
  service?: { name: string; method: { name: string; clientStreaming?: boolean; serverStreaming?: boolean }[] }[];
}
interface DescriptorSet {
  file: FileDescriptor[];
}

// reference.mjs is a plain ESM script run by `node`; it is loaded by URL and typed here.
const reference = (await import(new URL("./reference.mjs", import.meta.url).href)) as {
  buildDescriptorSet(root: string): DescriptorSet;
  renderReference(descriptorSet: DescriptorSet): string;
  errorReasons(descriptorSet: DescriptorSet): { reason: string; code: string; metadata: string[] }[];
};

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const CANONICAL_CODES = [
  "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
  "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
  "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
];

let descriptorSet: DescriptorSet;
let rendered: string;
let ownFiles: FileDescriptor[];

beforeAll(() => {
  descriptorSet = reference.buildDescriptorSet(root);
  rendered = reference.renderReference(descriptorSet);
  ownFiles = descriptorSet.file.filter((file) => file.package === "continuity.v1");
});

describe("the protocol reference", () => {
  it("documents every service and method, with its streaming shape", () => {
    expect(ownFiles.length).toBeGreaterThan(0);
    for (const file of ownFiles) {
      for (const service of file.service ?? []) {
        expect(rendered).toContain(`### Service \`${service.name}\``);
        for (const method of service.method) {
          const signature = `rpc ${method.name}(${method.clientStreaming ? "stream " : ""}continuity.v1.`;
          expect(rendered).toContain(signature);
          expect(rendered).toContain(`#### \`${service.name}.${method.name}\``);
        }
      }
    }
    expect(rendered).toMatch(/rpc Subscribe\(continuity\.v1\.SubscribeRequest\) returns \(stream continuity\.v1\.SubscribeResponse\)/);
    expect(rendered).toMatch(/rpc UploadSnapshot\(stream continuity\.v1\.UploadSnapshotRequest\)/);
  });

  it("documents every message field and enum value, skipping synthetic map entries", () => {
    const visit = (message: MessageDescriptor, prefix: string): void => {
      const fullName = prefix === "" ? message.name : `${prefix}.${message.name}`;
      if (message.options?.mapEntry) {
        expect(rendered).not.toContain(`### Message \`${fullName}\``);
        return;
      }
      expect(rendered).toContain(`### Message \`${fullName}\``);
      for (const field of message.field ?? []) expect(rendered).toContain(`| \`${field.name}\` | ${field.number} |`);
      for (const nested of message.nestedType ?? []) visit(nested, fullName);
    };
    for (const file of ownFiles) {
      for (const message of file.messageType ?? []) visit(message, "");
      for (const enumType of file.enumType ?? []) {
        expect(rendered).toContain(`### Enum \`${enumType.name}\``);
        for (const value of enumType.value) expect(rendered).toContain(`| \`${value.name}\` | ${value.number ?? 0} |`);
      }
    }
  });

  it("carries the proto comments, labels and map types", () => {
    expect(rendered).toContain("Stable identifier minted when the stream is created, a lowercase UUID.");
    expect(rendered).toMatch(/\| `expected_version` \| 3 \| `uint64` \| optional \|/);
    expect(rendered).toMatch(/\| `deltas` \| 2 \| \[`DeltaInput`\]\(#continuity-v1-deltainput\) \| repeated \|/);
    expect(rendered).toMatch(/\| `header` \| 1 \| \[`SnapshotHeader`\]\(#continuity-v1-snapshotheader\) \| oneof `part` \|/);
    expect(rendered).toMatch(/\| `attributes` \| 5 \| `map<string, string>` \|/);
    expect(rendered).toMatch(/\| `create_time` \| \d+ \| `google\.protobuf\.Timestamp` \|/);
  });

  it("links only to anchors it defines", () => {
    const anchors = new Set([...rendered.matchAll(/<a id="([^"]+)"><\/a>/g)].map((match) => match[1]));
    const links = [...rendered.matchAll(/\]\(#([^)]+)\)/g)].map((match) => match[1]);
    expect(links.length).toBeGreaterThan(100);
    for (const link of links) expect(anchors).toContain(link);
  });

  it("is deterministic and committed fresh", () => {
    expect(reference.renderReference(reference.buildDescriptorSet(root))).toBe(rendered);
    expect(readFileSync(join(root, "docs/reference/protocol.md"), "utf8")).toBe(rendered);
  });
});

describe("errorReasons", () => {
  it("reads a canonical code and lowerCamelCase metadata keys for every reason", () => {
    const reasons = reference.errorReasons(descriptorSet);
    expect(reasons.length).toBeGreaterThan(40);
    for (const reason of reasons) {
      expect(reason.reason).toMatch(/^[A-Z][A-Z0-9_]*$/);
      expect(CANONICAL_CODES).toContain(reason.code);
      for (const key of reason.metadata) expect(key).toMatch(/^[a-z][A-Za-z0-9]*$/);
    }
    expect(reasons.find((reason) => reason.reason === "SUBJECT_MOVED")?.metadata).toEqual(["target", "subject"]);
    expect(reasons.find((reason) => reason.reason === "VERSION_CONFLICT")).toMatchObject({
      code: "ABORTED",
      metadata: ["headVersion", "headHash"],
    });
  });
});
