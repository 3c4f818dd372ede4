/**
 * Links from a report to the requirements it cites. The documentation site (`pnpm run docs`)
 * lists every requirement under its ID at `<docs>/requirements/#<ID>`, an address that stays
 * the same when a rule moves between spec pages; from there the reader reaches the rule in
 * its place in the spec and the cases that test it.
 */
export interface RequirementLinkOptions {
  /**
   * Base URL of the documentation site, e.g. `https://continuity.example/docs` or
   * `http://127.0.0.1:4173` for `pnpm run docs:serve`. Without it reports carry no links.
   */
  readonly docsUrl?: string;
}

/** The page of one requirement: `requirementUrl("APPEND-004", "https://d.example/")` → `https://d.example/requirements/#APPEND-004`. */
export function requirementUrl(id: string, docsUrl: string): string {
  return `${docsUrl.replace(/\/+$/, "")}/requirements/#${encodeURIComponent(id)}`;
}

/** The links of a case's requirements, in its order; empty without a docs URL. */
export function requirementUrls(ids: readonly string[], options: RequirementLinkOptions | undefined): string[] {
  const docsUrl = options?.docsUrl;
  return docsUrl === undefined || docsUrl === "" ? [] : ids.map((id) => requirementUrl(id, docsUrl));
}
