// /conformance/ is the suite's README, /conformance/vectors the test vectors' README, and
// /conformance/cases the suite's case list with the requirements each case tests.
import { readRepoFile, REPO_ROOT } from "../.vitepress/lib/sources.mjs";
import { casesPage } from "../.vitepress/lib/generated-pages.mjs";

export default {
  watch: [`${REPO_ROOT}/conformance/README.md`, `${REPO_ROOT}/conformance/vectors/README.md`, `${REPO_ROOT}/conformance/src/cases/*.ts`],
  paths: () => [
    { params: { page: "index" }, content: readRepoFile("conformance/README.md") },
    { params: { page: "vectors" }, content: readRepoFile("conformance/vectors/README.md") },
    { params: { page: "cases" }, content: casesPage() },
  ],
};
