import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "error-info-missing",
  area: "ERR",
  caughtBy: ["names.malformed-resource-names-refused"],
  description: "Errors are sent without google.rpc.ErrorInfo.",
  edits: [
    {
      file: "errors.ts",
      find: "  return new RichServerError(code, message, [ErrorInfo.fromPartial(",
      replace: "  return new ServerError(code, message);\n  return new RichServerError(code, message, [ErrorInfo.fromPartial(",
    },
    {
      file: "errors.ts",
      find: "  return new RichServerError(Status.INVALID_ARGUMENT, message, [",
      replace: "  return new ServerError(Status.INVALID_ARGUMENT, message);\n  return new RichServerError(Status.INVALID_ARGUMENT, message, [",
    },
  ],
});
