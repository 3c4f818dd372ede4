// /sdk/ is the SDK's own README (packages/sdk/README.md), shown as it is on GitHub.
import { readRepoFile, REPO_ROOT } from "../.vitepress/lib/sources.mjs";

export default {
  watch: [`${REPO_ROOT}/packages/sdk/README.md`],
  paths: () => [{ params: { page: "index" }, content: readRepoFile("packages/sdk/README.md") }],
};
