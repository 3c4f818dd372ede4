// /repo/… shows the repository's other Markdown files (package READMEs and the like) as they
// are on GitHub, so a link to one from anywhere in the docs lands on a page of the site.
// A linked folder without a README gets a page listing its files, as GitHub would show it.
import { folderListing, folderListingPages, readRepoFile, repoMarkdownPages } from "../.vitepress/lib/sources.mjs";

const param = (page) => page.replace(/^repo\//, "").replace(/\.md$/, "");

export default {
  paths: () => [
    ...[...repoMarkdownPages()].map(([page, source]) => ({ params: { path: param(page) }, content: readRepoFile(source) })),
    ...[...folderListingPages()].map(([page, folder]) => ({ params: { path: param(page) }, content: folderListing(folder) })),
  ],
};
