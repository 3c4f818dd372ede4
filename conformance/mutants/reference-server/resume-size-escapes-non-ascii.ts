import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "resume-size-escapes-non-ascii",
  area: "CKPT",
  caughtBy: ["limit.utf8-bytes-at-exact-boundaries"],
  description: "The resume payload's size is measured on JSON with non-ASCII characters escaped as \\\\uXXXX (a JSON library's ASCII-only default), not on its canonical UTF-8 bytes.",
  edits: [
    {
      file: "services/checkpoint-service.ts",
      find: "      const resumeBytes = resumePayloadBytes(resume);",
      replace: "      const resumeBytes = Buffer.from(Buffer.from(resumePayloadBytes(resume)).toString(\"utf8\").replace(/[\\u0080-\\uffff]/g, (c) => `\\\\u${c.charCodeAt(0).toString(16).padStart(4, \"0\")}`));",
    },
  ],
});
