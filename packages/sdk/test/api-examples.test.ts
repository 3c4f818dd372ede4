import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { expect, it } from "vitest";

// The API reference (TypeDoc) promises an example on every function an app imports: each
// function exported by the package's app-facing entries must carry an `@example` tag.

const packageDir = join(dirname(fileURLToPath(import.meta.url)), "..");
const entries = ["src/index.ts", "src/browser.ts", "src/platform/index.ts", "src/react/index.ts"].map((entry) => join(packageDir, entry));

it("documents every exported function with an @example", () => {
  const program = ts.createProgram(entries, {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    customConditions: ["source"],
    noEmit: true,
    skipLibCheck: true,
  });
  const checker = program.getTypeChecker();
  const missing = new Set<string>();
  let functions = 0;
  for (const entry of entries) {
    const module = checker.getSymbolAtLocation(program.getSourceFile(entry)!)!;
    for (const exported of checker.getExportsOfModule(module)) {
      const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
      const declaration = symbol.declarations?.[0];
      if (declaration === undefined || !ts.isFunctionDeclaration(declaration)) continue;
      // Only the SDK's own functions; re-exports of dependencies document themselves.
      if (!declaration.getSourceFile().fileName.startsWith(join(packageDir, "src"))) continue;
      functions += 1;
      if (!ts.getJSDocTags(declaration).some((tag) => tag.tagName.text === "example")) missing.add(exported.name);
    }
  }
  expect(functions).toBeGreaterThan(20);
  expect([...missing].sort()).toEqual([]);
}, 60_000);
