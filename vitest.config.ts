import { defineConfig } from "vitest/config";

// One project per package, so `vitest run --project sdk` narrows a run while `pnpm test`
// runs everything. The `source` condition makes workspace packages resolve to their
// TypeScript sources, so tests never run against stale builds.
export default defineConfig({
  resolve: { conditions: ["source"] },
  ssr: { resolve: { conditions: ["source"] } },
  test: {
    projects: [
      {
        extends: true,
        test: { name: "sdk", root: "packages/sdk", include: ["src/**/*.test.ts", "test/**/*.test.ts"] },
      },
      {
        extends: true,
        test: { name: "reference-server", root: "packages/reference-server", include: ["src/**/*.test.ts", "test/**/*.test.ts"] },
      },
      {
        extends: true,
        test: { name: "bundle", root: "packages/bundle", include: ["src/**/*.test.ts", "test/**/*.test.ts"] },
      },
      {
        extends: true,
        test: { name: "cli", root: "packages/cli", include: ["src/**/*.test.ts", "test/**/*.test.ts"] },
      },
      {
        extends: true,
        test: { name: "conformance", root: "conformance", include: ["src/**/*.test.ts", "test/**/*.test.ts"] },
      },
      {
        extends: true,
        test: { name: "repo", root: ".", include: ["scripts/**/*.test.ts"] },
      },
    ],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
