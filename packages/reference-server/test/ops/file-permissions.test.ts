// Defect 6 of issue 10: with umask 022 the database, WAL and SHM were 0644 and a pre-existing
// 0755 data directory stayed 0755. Everything holding people's state or keys must be private.
import { chmod, mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createSqliteStore } from "../../src/store/index.js";
import { spawnServer } from "./server-process.js";

const modeOf = async (path: string) => (await stat(path)).mode & 0o777;

describe("file permissions", () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
  });
  const tempDir = async () => {
    const dir = await mkdtemp(join(tmpdir(), "continuity-perms-"));
    dirs.push(dir);
    return dir;
  };

  it("the store tightens a world-readable database and gives its WAL and SHM the same 0600", async () => {
    const dir = await tempDir();
    const path = join(dir, "continuity.sqlite");
    await writeFile(path, "");
    await chmod(path, 0o644);
    const store = createSqliteStore({ path });
    try {
      await store.getEpoch();
      expect(await modeOf(path)).toBe(0o600);
      expect(await modeOf(`${path}-wal`)).toBe(0o600);
      expect(await modeOf(`${path}-shm`)).toBe(0o600);
    } finally {
      await store.close();
    }
  });

  it("the server, started under umask 022 on a pre-existing 0755 data directory, keeps it all private", async () => {
    const dataDir = join(await tempDir(), "data");
    await mkdir(dataDir);
    await chmod(dataDir, 0o755);
    const server = spawnServer([], { CONTINUITY_LISTEN: "127.0.0.1:0", CONTINUITY_DATA_DIR: dataDir, CONTINUITY_PLATFORMS: undefined }, { umask: 0o022 });
    try {
      await server.ready();
      expect(await modeOf(dataDir)).toBe(0o700);
      for (const file of ["continuity.sqlite", "continuity.sqlite-wal", "continuity.sqlite-shm", "server-key.jwk", "dev-platforms/demo-a.private.jwk"]) {
        expect([file, await modeOf(join(dataDir, file))]).toEqual([file, 0o600]);
      }
      expect(await modeOf(join(dataDir, "dev-platforms"))).toBe(0o700);
    } finally {
      server.kill();
      await server.exited();
    }
  });
});
