/**
 * The CLI against real reference servers over real connections: export → verify (against the
 * exporter's published keys) → import into another server, plain and encrypted through a real
 * pipe between two `continuity` processes, with equal head hashes on both sides; the server's
 * refusals as one line with their reason; and a live migration followed to its end.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { heads, startServer, writeState, type ServerProcess } from "./support/servers.js";
import { cli } from "./support/test-io.js";

const BIN = resolve(dirname(fileURLToPath(import.meta.url)), "../bin/continuity.mjs");

let source: ServerProcess;
let plainTarget: ServerProcess;
let sealedTarget: ServerProcess;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "continuity-cli-e2e-"));
  [source, plainTarget, sealedTarget] = await Promise.all([startServer(), startServer(), startServer()]);
  await writeState(source.client("ana", { device: "ana-laptop" }), 400);
  await writeState(source.client("ben", { device: "ben-phone" }), 60);
  await writeState(source.client("dora", { device: "dora-laptop" }), 1500);
}, 90_000);

afterAll(async () => {
  await Promise.all([source, plainTarget, sealedTarget].map((server) => server?.stop()));
  await rm(dir, { recursive: true, force: true });
});

/** The sign-in flags of `account` of platform demo-a on `server`. */
function as(server: ServerProcess, account: string): string[] {
  return ["--server", server.address, "--platform-id", "demo-a", "--platform-key", server.keyFile("demo-a"), "--account", account];
}

/** Runs a shell pipeline of real `continuity` processes. */
function shell(command: string, env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn("bash", ["-c", `set -o pipefail; ${command}`], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString("utf8");
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8");
    });
    child.on("exit", (code) => done({ code: code ?? -1, stdout, stderr }));
  });
}

describe("export, verify, import", () => {
  it("carries a subject to another server with equal heads, and a repeat stores nothing", async () => {
    const file = join(dir, "ana.cbundle");
    const exported = await cli(["--json", "export", ...as(source, "ana"), "-o", file]);
    expect(exported.stderr).toBe("");
    expect(exported.code).toBe(0);
    const summary = JSON.parse(exported.out) as { records: number; streams: number; signature: { checked: boolean; kid: string } };
    // 2 stream records, 403 deltas, ana's account link and her laptop.
    expect(summary).toMatchObject({ streams: 2, records: 407, signature: { checked: true } });

    const verified = await cli(["verify", file, "--server", source.address]);
    expect(verified.code).toBe(0);
    expect(verified.out).toContain(`verified with key ${summary.signature.kid}, one of the keys the server at ${source.address} publishes`);
    const elsewhere = await cli(["verify", file, "--server", plainTarget.address]);
    expect(elsewhere.code).toBe(1);
    expect(elsewhere.stderr.trim()).toBe(`continuity verify: ${file}: trailer.signature: no trusted key has kid ${summary.signature.kid}`);

    const imported = await cli(["--json", "import", file, ...as(plainTarget, "ana")]);
    expect(imported.stderr).toBe("");
    expect(imported.code).toBe(0);
    const first = JSON.parse(imported.out) as { subject: string; recordsImported: string; recordsSkipped: string };
    expect(Number(first.recordsImported) + Number(first.recordsSkipped)).toBe(407);
    expect(Number(first.recordsImported)).toBeGreaterThanOrEqual(406);

    const before = await heads(source.client("ana"));
    expect(Object.keys(before).sort()).toEqual(["cart", "progress"]);
    expect(before["progress"]!.headVersion).toBe("400");
    expect(await heads(plainTarget.client("ana"))).toEqual(before);

    const again = JSON.parse((await cli(["--json", "import", file, ...as(plainTarget, "ana")])).out) as { recordsImported: string; recordsSkipped: string };
    expect(again).toMatchObject({ recordsImported: "0", recordsSkipped: "407" });
  });

  it("reports the server's refusal in one line with its reason", async () => {
    const file = join(dir, "ana-again.cbundle");
    expect((await cli(["export", ...as(source, "ana"), "-o", file])).code).toBe(0);
    // carl has streams of his own named like ana's: the import must not merge them.
    await writeState(plainTarget.client("carl", { device: "carl-tablet" }), 1);
    const refused = await cli(["import", file, ...as(plainTarget, "carl")]);
    expect(refused.code).toBe(1);
    const lines = refused.stderr.trim().split("\n");
    expect(lines.at(-1)).toMatch(new RegExp(`^continuity import: ${plainTarget.address} refused ImportBundle: ALREADY_EXISTS STREAM_ALREADY_EXISTS: `));

    const wrongKey = await cli(["export", "--server", source.address, "--platform-id", "demo-a", "--platform-key", plainTarget.keyFile("demo-a"), "--account", "ana", "-o", join(dir, "never.cbundle")]);
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stderr.trim()).toMatch(new RegExp(`^continuity export: ${source.address} refused ExchangeToken: UNAUTHENTICATED ASSERTION_INVALID: .* \\(check --platform-id and --platform-key\\)$`));

    const unreachable = await cli(["export", ...as(source, "ana").map((flag) => (flag === source.address ? "127.0.0.1:1" : flag)), "-o", join(dir, "never.cbundle")]);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr.trim()).toMatch(/^continuity export: cannot reach the server at 127\.0\.0\.1:1: .*ECONNREFUSED/);
  });

  // Four CLI processes start here (tsx each); on a loaded 2-core machine that alone takes half a minute.
  it("pipes an encrypted, compressed export into an import between two processes, and refuses the wrong key", async () => {
    const key = join(dir, "sealed.key");
    const other = join(dir, "other.key");
    const recipient = /Public key: (\S+)/.exec((await cli(["keygen", "-o", key])).out)![1]!;
    await cli(["keygen", "-o", other]);
    const exportCommand = `node ${BIN} export -o - --gzip --encrypt-to ${recipient} ${as(source, "ana").join(" ")}`;

    // The import side signs in through environment variables, as a script would.
    const env = { CONTINUITY_SERVER: sealedTarget.address, CONTINUITY_PLATFORM_ID: "demo-a", CONTINUITY_PLATFORM_KEY: sealedTarget.keyFile("demo-a"), CONTINUITY_ACCOUNT: "ana" };
    const wrong = await shell(`${exportCommand} | node ${BIN} import - --identity ${other}`, env);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain(`continuity import: cannot decrypt stdin: it is not encrypted to any identity in ${other} (wrong key)\n`);

    const piped = await shell(`${exportCommand} | node ${BIN} import - --identity ${key}`, env);
    expect(piped.stdout).toMatch(new RegExp(`^imported stdin into subjects/\\S+ on ${sealedTarget.address}$`, "m"));
    expect(piped.code).toBe(0);
    expect(await heads(sealedTarget.client("ana"))).toEqual(await heads(source.client("ana")));
  }, 120_000);
});

describe("migrate", () => {
  it("moves a subject live to the target and follows it to completion; the source then redirects", async () => {
    const before = await heads(source.client("ben"));
    const run = await cli(["--json", "migrate", ...as(plainTarget, "ben"), "--source", source.address, "--source-platform-key", source.keyFile("demo-a"), "--poll-interval", "0.1"]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const migration = JSON.parse(run.out) as { migration: string; state: string; recordsCopied: string; sourceSubject: string; source: string };
    expect(migration).toMatchObject({ state: "COMPLETED", source: source.address });
    expect(migration.migration).toMatch(/^subjects\/[^/]+\/migrations\/[^/]+$/);
    expect(Number(migration.recordsCopied)).toBeGreaterThanOrEqual(65);
    expect(await heads(plainTarget.client("ben"))).toEqual(before);

    const moved = await cli(["export", ...as(source, "ben"), "-o", join(dir, "ben.cbundle")]);
    expect(moved.code).toBe(1);
    expect(moved.stderr.trim()).toMatch(new RegExp(`^continuity export: ${source.address} refused \\w+: FAILED_PRECONDITION SUBJECT_MOVED: .* \\(moved to ${plainTarget.address}\\)$`));

    const cancel = await cli(["migrate", ...as(plainTarget, "ben"), "--cancel", migration.migration]);
    expect(cancel.code).toBe(1);
    expect(cancel.out).toContain(`${migration.migration} on ${plainTarget.address}: COMPLETED`);
    expect(cancel.stderr.trim()).toBe(`continuity migrate: ${migration.migration} had already completed; nothing was cancelled`);
  });

  it("cancels on Ctrl-C when told to, and the source keeps serving the subject", async () => {
    const before = await heads(source.client("dora"));
    const run = await cli(["migrate", ...as(sealedTarget, "dora"), "--source", source.address, "--source-platform-key", source.keyFile("demo-a"), "--on-interrupt", "cancel"], {
      interruptWhen: (stderr) => /^started subjects\//m.test(stderr),
    });
    expect(run.code).toBe(130);
    expect(run.stderr).toMatch(/^cancelling subjects\/[^/]+\/migrations\/\S+…$/m);
    expect(run.out).toMatch(/: CANCELLED\n/);
    const exported = await cli(["--json", "export", ...as(source, "dora"), "-o", join(dir, "dora.cbundle")]);
    expect(exported.code).toBe(0);
    expect(await heads(source.client("dora"))).toEqual(before);
  });
});
