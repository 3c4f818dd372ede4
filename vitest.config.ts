import { relative } from "node:path";
import { configDefaults, defineConfig } from "vitest/config";
import { BaseSequencer, type TestSpecification } from "vitest/node";

/**
 * Files that take minutes and sit in projects late in vitest's order (it sorts by project name,
 * then by the durations cached in node_modules, which a fresh CI clone does not have): started
 * last, they were the tail of a CI run (docs-site alone ran its 193 s after every other file had
 * been handed out). They go first; everything else keeps vitest's own order.
 */
const LONG_FILES_FIRST = ["scripts/docs-site.test.ts", "packages/sdk/test/package.test.ts", "packages/reference-server/test/ops/built-server.test.ts"];

class LongFilesFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (file: TestSpecification): number => {
      const at = LONG_FILES_FIRST.indexOf(relative(import.meta.dirname, file.moduleId));
      return at === -1 ? LONG_FILES_FIRST.length : at;
    };
    return (await super.sort(files)).sort((a, b) => rank(a) - rank(b));
  }
}

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
        test: {
          name: "reference-server",
          root: "packages/reference-server",
          include: ["src/**/*.test.ts", "test/**/*.test.ts"],
          // Replicas need PostgreSQL: they run in the project below.
          exclude: [...configDefaults.exclude, "test/replicas/**"],
          globalSetup: ["src/testing/postgres-global-setup.ts"],
        },
      },
      {
        // The integration tests again, each test server on PostgreSQL (DATABASE_URL, default
        // the local one): every behaviour they check on SQLite must hold on PostgreSQL too.
        extends: true,
        test: {
          name: "reference-server-postgres",
          root: "packages/reference-server",
          include: [
            "test/core/{checkpoints,snapshots,state-limit,streams,subscription-stall,subscriptions}.test.ts",
            "test/identity/{identity,link-code-attempts}.test.ts",
            "test/portability/*.test.ts",
            "test/ops/connections.test.ts",
            "test/replicas/*.test.ts",
          ],
          env: { CONTINUITY_TEST_STORE: "postgres" },
          globalSetup: ["src/testing/postgres-global-setup.ts"],
        },
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
    // Vitest's default is one worker fewer than the cores, so on CI's 2 cores the files ran one
    // at a time. Most of them wait on child processes (servers, the suite, PostgreSQL), on
    // sockets and on timers, not on the CPU of their own worker: two at a time still left the
    // cores half idle (a whole run: 613 CPU-seconds of vitest and its children in what takes
    // about 10 minutes on a quiet 2-core machine), so three run at a time.
    maxWorkers: 3,
    // Every test's duration, kept (gitignored) so that whoever trims CI's time starts from
    // where it went, not from guesses.
    sequence: { sequencer: LongFilesFirst },
    reporters: ["default", "json"],
    outputFile: { json: ".artifacts/vitest/report.json" },
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
