// A TypeDoc plugin that files every export of the SDK under the concern it belongs to, so the
// API reads as "Client, Streams, Replicas, …" instead of one alphabetical list.
//
// The concern is the SDK's own folder layout (`src/<concern>/…`, one folder per concern),
// so a new export lands in the right group without anyone tagging it. An export that
// carries its own `@category` keeps it; one from outside the SDK's sources (a re-export
// such as `Status`) is filed with the concern that re-exports it, listed in REEXPORTS.
import { CategoryRouter, Comment, CommentTag, Converter, DeclarationReflection, ReflectionKind } from "typedoc";

/** Folder under `packages/sdk/src` → the concern's title, in reading order. */
export const CONCERNS = [
  ["client", "Client"],
  ["auth", "Auth and linking"],
  ["stream", "Streams"],
  ["subscription", "Replicas"],
  ["handoff", "Checkpoints and handoff"],
  ["queue", "Offline queue"],
  ["errors", "Errors"],
  ["transport", "Transport"],
  ["protocol", "Protocol helpers"],
  ["gen", "Generated messages"],
];

/** Exports whose declaration is not in the SDK's sources. */
const REEXPORTS = { Status: "Errors" };

const TITLES = new Map(CONCERNS);

/** The concern of a declaration file, or undefined when it is not in an SDK concern folder. */
export function concernOf(fileName) {
  const folder = /\/packages\/sdk\/src\/([^/]+)\//.exec(fileName.replace(/\\/g, "/"))?.[1];
  return folder === undefined ? undefined : TITLES.get(folder);
}

export function load(app) {
  app.renderer.defineRouter("concerns", ConcernRouter);
  // Before the CategoryPlugin (RESOLVE_END) reads the tags.
  app.converter.on(Converter.EVENT_RESOLVE_BEGIN, (context) => {
    const problems = [];
    for (const child of context.project.children ?? []) {
      if (child.comment?.getTag("@category") !== undefined) continue;
      const fileName = context.project.getSymbolIdFromReflection(child)?.fileName ?? "";
      const title = concernOf(fileName) ?? REEXPORTS[child.name];
      if (title === undefined) {
        problems.push(`${child.name} (${fileName})`);
        continue;
      }
      child.comment ??= new Comment();
      child.comment.blockTags.push(new CommentTag("@category", [{ kind: "text", text: title }]));
    }
    for (const problem of problems) app.logger.warn(`typedoc-concerns: no concern for ${problem}; add its folder to CONCERNS or give it a @category`);
  });
}

/**
 * The category router, except that the members of the generated `v1` namespace are sections
 * of its one page instead of ~370 pages of their own: the protocol reference is where the
 * messages are explained, and the SDK API only needs their TypeScript shapes.
 */
class ConcernRouter extends CategoryRouter {
  // typedoc-plugin-markdown writes `.md` pages; its `fileExtension` option says which.
  extension = this.application.options.getValue("fileExtension") ?? ".html";

  getPageKind(target) {
    if (target instanceof DeclarationReflection && target.parent instanceof DeclarationReflection && target.parent.kindOf(ReflectionKind.Namespace) && target.parent.name === "v1") return undefined;
    return super.getPageKind(target);
  }
}
