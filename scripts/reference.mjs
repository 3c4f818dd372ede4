// Generates docs/reference/protocol.md, the protocol reference, from the proto files and
// their comments (which are normative), so the reference can never disagree with the
// contract. It reads the FileDescriptorSet that `buf build` produces with source info.
//
//   node scripts/reference.mjs --write   (re)write docs/reference/protocol.md
//   node scripts/reference.mjs --check   fail if it is stale
//
// Output is deterministic: proto declaration order within a file, files by name, no dates.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const PACKAGE = "continuity.v1";
const OUTPUT = "docs/reference/protocol.md";

// FileDescriptorProto / DescriptorProto field numbers used in SourceCodeInfo paths.
const FILE_MESSAGE = 4;
const FILE_ENUM = 5;
const FILE_SERVICE = 6;
const MESSAGE_FIELD = 2;
const MESSAGE_NESTED = 3;
const MESSAGE_ENUM = 4;
const ENUM_VALUE = 2;
const SERVICE_METHOD = 2;

/**
 * Builds the continuity.v1 module with buf and returns the FileDescriptorSet as JSON, with
 * source info (the comments). `--exclude-source-info` must never be passed here.
 */
export function buildDescriptorSet(root) {
  const buf = join(root, "node_modules", ".bin", "buf");
  const json = execFileSync(buf, ["build", "--as-file-descriptor-set", "-o", "-#format=json"], {
    cwd: root,
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  return JSON.parse(json);
}

/** Indexes every file's source locations by path, so comments can be looked up per element. */
function commentIndex(file) {
  const index = new Map();
  for (const location of file.sourceCodeInfo?.location ?? []) {
    const key = (location.path ?? []).join(".");
    if (location.leadingComments !== undefined || location.trailingComments !== undefined) {
      index.set(key, [location.leadingComments, location.trailingComments].filter(Boolean).join("\n\n"));
    }
  }
  return (path) => normalizeComment(index.get(path.join(".")) ?? "");
}

/** Joins wrapped comment lines into paragraphs; keeps paragraph breaks. */
function normalizeComment(comment) {
  return comment
    .split(/\n\s*\n/)
    .map((paragraph) => paragraph.split("\n").map((line) => line.trim()).filter(Boolean).join(" "))
    .filter(Boolean)
    .join("\n\n");
}

/**
 * The reasons of `continuity.v1.ErrorReason`, as their comments in errors.proto define them:
 * the wire reason (value name without `ERROR_REASON_`), the gRPC code the comment starts
 * with, and the ErrorInfo metadata keys of its `Metadata:` sentence.
 */
export function errorReasons(descriptorSet) {
  for (const file of descriptorSet.file ?? []) {
    if (file.package !== PACKAGE) continue;
    const comment = commentIndex(file);
    const enumIndex = (file.enumType ?? []).findIndex((candidate) => candidate.name === "ErrorReason");
    if (enumIndex === -1) continue;
    const reasons = [];
    file.enumType[enumIndex].value.forEach((value, valueIndex) => {
      if ((value.number ?? 0) === 0) return;
      const text = comment([FILE_ENUM, enumIndex, ENUM_VALUE, valueIndex]);
      const code = /^([A-Z][A-Z_]+)\./.exec(text)?.[1] ?? "";
      const metadataSentence = /Metadata:\s*([\s\S]*?)(?:\.\s+[A-Z]|\.?$)/.exec(text)?.[1] ?? "";
      const metadata = [...metadataSentence.matchAll(/`([^`]+)`/g)].map((match) => match[1]);
      reasons.push({ reason: value.name.replace(/^ERROR_REASON_/, ""), number: value.number, code, metadata, comment: text });
    });
    return reasons;
  }
  throw new Error("errors.proto: enum continuity.v1.ErrorReason not found");
}

function anchor(fullName) {
  return fullName.replace(/^\./, "").replace(/[^A-Za-z0-9]+/g, "-").toLowerCase();
}

function cell(text) {
  return text.replace(/\|/g, "\\|").replace(/\n\n/g, "<br><br>").replace(/\n/g, " ");
}

function block(text) {
  return text === "" ? "_No comment._" : text;
}

/** Renders the whole reference for a FileDescriptorSet. */
export function renderReference(descriptorSet) {
  const files = (descriptorSet.file ?? [])
    .filter((file) => file.package === PACKAGE)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const known = new Set();
  const mapEntries = new Map();
  for (const file of files) {
    const visit = (messages, prefix) => {
      for (const message of messages ?? []) {
        const fullName = `${prefix}.${message.name}`;
        known.add(fullName);
        if (message.options?.mapEntry) mapEntries.set(fullName, message);
        visit(message.nestedType, fullName);
        for (const nestedEnum of message.enumType ?? []) known.add(`${fullName}.${nestedEnum.name}`);
      }
    };
    visit(file.messageType, `.${file.package}`);
    for (const enumType of file.enumType ?? []) known.add(`.${file.package}.${enumType.name}`);
  }

  const typeLink = (typeName) => {
    const short = typeName.replace(/^\./, "").replace(`${PACKAGE}.`, "");
    return known.has(typeName) ? `[\`${short}\`](#${anchor(typeName)})` : `\`${typeName.replace(/^\./, "")}\``;
  };
  const scalar = (field) => field.type.replace(/^TYPE_/, "").toLowerCase();
  const fieldType = (field) => {
    if (field.type === "TYPE_MESSAGE" || field.type === "TYPE_ENUM") {
      const entry = mapEntries.get(field.typeName);
      if (entry !== undefined) {
        const [key, value] = entry.field;
        const isScalar = value.type !== "TYPE_MESSAGE" && value.type !== "TYPE_ENUM";
        return isScalar ? `\`map<${scalar(key)}, ${scalar(value)}>\`` : `\`map<${scalar(key)},\` ${typeLink(value.typeName)}\`>\``;
      }
      return typeLink(field.typeName);
    }
    return `\`${scalar(field)}\``;
  };

  const out = [];
  out.push("# Continuity protocol reference (`continuity.v1`)");
  out.push("");
  out.push("<!-- Generated by scripts/reference.mjs from proto/continuity/v1. Do not edit; run `pnpm gen`. -->");
  out.push("");
  out.push("Every service, method, message, field and enum of the protocol, with the comments of the");
  out.push("proto files, which are normative. The [specification](../spec/README.md) says how the");
  out.push("pieces behave together; its requirement IDs are what implementations and the conformance");
  out.push("suite cite.");
  out.push("");

  out.push("## Services");
  out.push("");
  for (const file of files) {
    for (const service of file.service ?? []) {
      const fullName = `.${file.package}.${service.name}`;
      out.push(`- [\`${service.name}\`](#${anchor(fullName)}) (\`${file.name}\`): ${service.method.map((method) => `\`${method.name}\``).join(", ")}`);
    }
  }
  out.push("");

  for (const file of files) {
    const comment = commentIndex(file);
    out.push(`## \`${file.name}\``);
    out.push("");
    (file.service ?? []).forEach((service, serviceIndex) => {
      const fullName = `.${file.package}.${service.name}`;
      out.push(`<a id="${anchor(fullName)}"></a>`);
      out.push("");
      out.push(`### Service \`${service.name}\``);
      out.push("");
      out.push(block(comment([FILE_SERVICE, serviceIndex])));
      out.push("");
      out.push("| Method | Request | Response |");
      out.push("|---|---|---|");
      for (const method of service.method) {
        const request = `${method.clientStreaming ? "stream " : ""}${typeLink(method.inputType)}`;
        const response = `${method.serverStreaming ? "stream " : ""}${typeLink(method.outputType)}`;
        out.push(`| [\`${method.name}\`](#${anchor(`${fullName}.${method.name}`)}) | ${request} | ${response} |`);
      }
      out.push("");
      service.method.forEach((method, methodIndex) => {
        out.push(`<a id="${anchor(`${fullName}.${method.name}`)}"></a>`);
        out.push("");
        out.push(`#### \`${service.name}.${method.name}\``);
        out.push("");
        const kind = method.clientStreaming && method.serverStreaming
          ? "bidirectional streaming"
          : method.clientStreaming ? "client streaming" : method.serverStreaming ? "server streaming" : "unary";
        out.push("```proto");
        out.push(`rpc ${method.name}(${method.clientStreaming ? "stream " : ""}${method.inputType.replace(/^\./, "")}) returns (${method.serverStreaming ? "stream " : ""}${method.outputType.replace(/^\./, "")});`);
        out.push("```");
        out.push("");
        out.push(`${kind[0].toUpperCase()}${kind.slice(1)}. ${block(comment([FILE_SERVICE, serviceIndex, SERVICE_METHOD, methodIndex]))}`);
        out.push("");
      });
    });

    const renderEnum = (enumType, fullName, path) => {
      out.push(`<a id="${anchor(fullName)}"></a>`);
      out.push("");
      out.push(`### Enum \`${fullName.replace(`.${PACKAGE}.`, "")}\``);
      out.push("");
      out.push(block(comment(path)));
      out.push("");
      out.push("| Value | Number | Description |");
      out.push("|---|---|---|");
      enumType.value.forEach((value, valueIndex) => {
        out.push(`| \`${value.name}\` | ${value.number ?? 0} | ${cell(comment([...path, ENUM_VALUE, valueIndex]))} |`);
      });
      out.push("");
    };

    const renderMessage = (message, fullName, path) => {
      if (message.options?.mapEntry) return;
      out.push(`<a id="${anchor(fullName)}"></a>`);
      out.push("");
      out.push(`### Message \`${fullName.replace(`.${PACKAGE}.`, "")}\``);
      out.push("");
      out.push(block(comment(path)));
      out.push("");
      const fields = message.field ?? [];
      if (fields.length === 0) {
        out.push("No fields.");
        out.push("");
      } else {
        out.push("| Field | Number | Type | Label | Description |");
        out.push("|---|---|---|---|---|");
        fields.forEach((field, fieldIndex) => {
          const oneof = field.oneofIndex !== undefined && !field.proto3Optional ? message.oneofDecl[field.oneofIndex].name : undefined;
          const isMap = mapEntries.has(field.typeName ?? "");
          const label = isMap
            ? ""
            : field.label === "LABEL_REPEATED"
              ? "repeated"
              : field.proto3Optional
                ? "optional"
                : oneof !== undefined
                  ? `oneof \`${oneof}\``
                  : "";
          out.push(`| \`${field.name}\` | ${field.number} | ${fieldType(field)} | ${label} | ${cell(comment([...path, MESSAGE_FIELD, fieldIndex]))} |`);
        });
        out.push("");
      }
      (message.nestedType ?? []).forEach((nested, nestedIndex) => renderMessage(nested, `${fullName}.${nested.name}`, [...path, MESSAGE_NESTED, nestedIndex]));
      (message.enumType ?? []).forEach((nested, nestedIndex) => renderEnum(nested, `${fullName}.${nested.name}`, [...path, MESSAGE_ENUM, nestedIndex]));
    };

    (file.messageType ?? []).forEach((message, messageIndex) => renderMessage(message, `.${file.package}.${message.name}`, [FILE_MESSAGE, messageIndex]));
    (file.enumType ?? []).forEach((enumType, enumIndex) => renderEnum(enumType, `.${file.package}.${enumType.name}`, [FILE_ENUM, enumIndex]));
  }
  return `${out.join("\n").replace(/\n{3,}/g, "\n\n").trimEnd()}\n`;
}

async function main(argv) {
  const root = join(dirname(fileURLToPath(import.meta.url)), "..");
  const mode = argv.includes("--write") ? "write" : argv.includes("--check") ? "check" : undefined;
  if (mode === undefined) {
    process.stderr.write("usage: node scripts/reference.mjs --write | --check\n");
    return 2;
  }
  const output = join(root, OUTPUT);
  const rendered = renderReference(buildDescriptorSet(root));
  const current = existsSync(output) ? readFileSync(output, "utf8") : undefined;
  if (mode === "check") {
    if (current !== rendered) {
      process.stderr.write(`reference: ${OUTPUT} is stale; run \`node scripts/reference.mjs --write\`\n`);
      return 1;
    }
    process.stdout.write(`reference: ${OUTPUT} is fresh\n`);
    return 0;
  }
  mkdirSync(dirname(output), { recursive: true });
  if (current !== rendered) writeFileSync(output, rendered);
  process.stdout.write(`reference: wrote ${relative(root, output)}\n`);
  return 0;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = await main(process.argv.slice(2));
}
