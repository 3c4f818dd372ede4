// /requirements/ lists every requirement of the spec by ID: the stable address that
// conformance reports link a failure to (`--docs-url`).
import { DOCS_ROOT } from "../.vitepress/lib/sources.mjs";
import { requirementsPage } from "../.vitepress/lib/generated-pages.mjs";

export default {
  watch: [`${DOCS_ROOT}/spec/*.md`],
  paths: () => [{ params: { page: "index" }, content: requirementsPage() }],
};
