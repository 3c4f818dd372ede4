import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

// The SDK guides show code that `tsc` compiles: each code block must be a region of the
// matching file in examples/guides, which the SDK's typecheck covers.

const sdk = join(dirname(fileURLToPath(import.meta.url)), "..");
const guides = [
  ["sdk-keep-in-sync.md", "keep-in-sync.ts"],
  ["sdk-hand-off.md", "hand-off.ts"],
  ["sdk-resume.md", "resume.ts"],
] as const;

describe.each(guides)("docs/guides/%s", (guide, example) => {
  it(`shows only code compiled in examples/guides/${example}`, async () => {
    const markdown = await readFile(join(sdk, "../../docs/guides", guide), "utf8");
    const source = await readFile(join(sdk, "examples/guides", example), "utf8");
    const blocks = [...markdown.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1] ?? "");
    const regions = [...source.matchAll(/\/\/ #region \w+\n([\s\S]*?)\/\/ #endregion/g)].map((match) => match[1] ?? "");
    expect(blocks.length).toBeGreaterThan(0);
    expect(blocks).toEqual(regions);
  });
});
