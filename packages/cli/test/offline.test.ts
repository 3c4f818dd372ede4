import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import type { continuity } from "@continuity/sdk/gen";
import { Encrypter } from "age-encryption";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeBundleFile } from "../src/file/bundle-file.js";
import { bundleFile, sealBundle, signingKey, UID_CART, UID_PROGRESS } from "./support/sealed-bundle.js";
import { cli } from "./support/test-io.js";

let dir: string;
let good: Buffer;
let jwksFile: string;
let otherJwksFile: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "continuity-cli-"));
  const { key, jwks } = await signingKey("exporter-1");
  good = bundleFile(await sealBundle(key));
  jwksFile = join(dir, "exporter.jwks.json");
  await writeFile(jwksFile, JSON.stringify(jwks));
  otherJwksFile = join(dir, "other.jwks.json");
  await writeFile(otherJwksFile, JSON.stringify((await signingKey("exporter-1")).jwks));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(name: string, bytes: Uint8Array): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  return path;
}

async function identity(name: string): Promise<{ path: string; recipient: string }> {
  const path = join(dir, name);
  const run = await cli(["keygen", "-o", path]);
  expect(run.code).toBe(0);
  const recipient = /Public key: (age1\S+)/.exec(run.out)?.[1];
  expect(recipient).toBeDefined();
  return { path, recipient: recipient! };
}

describe("verify", () => {
  it("accepts a good bundle and checks its signature against a JWKS file", async () => {
    const path = await file("good.cbundle", good);
    const run = await cli(["verify", path, "--jwks", jwksFile]);
    expect(run.stderr).toMatch(/^verify: 12 records, .* in /m);
    expect(run.code).toBe(0);
    expect(run.out).toContain(`${path}: the bundle verifies`);
    expect(run.out).toMatch(/records +12 \(/);
    expect(run.out).toContain("verified with key exporter-1");

    const json = await cli(["--json", "verify", path, "--jwks", jwksFile]);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.out)).toMatchObject({ ok: true, streams: 2, records: 12, layers: [], signature: { checked: true, kid: "exporter-1" } });
    expect(json.stderr).toBe("");
  });

  it("says when the signature was not checked, and refuses one by another key with the same kid", async () => {
    const path = await file("unchecked.cbundle", good);
    const unchecked = await cli(["verify", path]);
    expect(unchecked.code).toBe(0);
    expect(unchecked.out).toContain("signature  not checked");

    const forged = await cli(["verify", path, "--jwks", otherJwksFile]);
    expect(forged.code).toBe(1);
    expect(forged.stderr.trim()).toBe(`continuity verify: ${path}: trailer.signature: the signature does not verify with key exporter-1`);
  });

  it("names the first broken record and where it sits, and exits non-zero", async () => {
    const { key } = await signingKey("k");
    // Changed before sealing: count and digest agree, only the hash chain can tell.
    const parts = await sealBundle(key, {
      mutate: (records) => {
        const delta = records[3]!.record as { $case: "delta"; value: continuity.v1.Delta };
        delta.value = { ...delta.value, payload: Buffer.from('{"k4":5}') };
      },
    });
    const path = await file("broken-chain.cbundle", bundleFile(parts));
    const offset = parts.slice(0, 4).reduce((sum, part) => sum + 4 + part.length, 0);
    const run = await cli(["verify", path]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`^continuity verify: ${path}: records\\[3\\]\\.delta\\.hash: version 4 of ${UID_PROGRESS} breaks the hash chain: .* \\(part at byte ${offset}\\)\\n$`, "m"));
    expect(run.stderr.trim().split("\n").at(-1)).toMatch(/^continuity verify: /);

    const json = await cli(["--json", "verify", path]);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.out)).toMatchObject({ ok: false, error: { field: "records[3].delta.hash", recordIndex: 3 } });
  });

  it("refuses a record changed after sealing through the records digest", async () => {
    const parts = [...(await sealBundle((await signingKey("k")).key))];
    // Flip a byte inside the device record's platform name: the record still decodes.
    const device = Buffer.from(parts[11]!);
    device.writeUInt8(device.readUInt8(device.length - 1) ^ 0x01, device.length - 1);
    parts[11] = device;
    const run = await cli(["verify", await file("changed.cbundle", bundleFile(parts))]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/trailer\.records_digest: the records digest is [0-9a-f]{64}, the records give [0-9a-f]{64}/);
  });

  it("refuses a truncated file, one that is not a bundle, and one that is not there", async () => {
    const cut = await cli(["verify", await file("cut.cbundle", good.subarray(0, good.length - 10))]);
    expect(cut.code).toBe(1);
    expect(cut.stderr).toMatch(/cut\.cbundle: the file ends inside part 13: \d+ of its \d+ bytes are there/);

    const noTrailer = await cli(["verify", await file("no-trailer.cbundle", good.subarray(0, lastPartOffset(good)))]);
    expect(noTrailer.code).toBe(1);
    expect(noTrailer.stderr).toMatch(/no-trailer\.cbundle: trailer: the bundle ends without a trailer/);

    const text = await cli(["verify", await file("notes.txt", Buffer.from("these are not the bytes you are looking for\n"))]);
    expect(text.code).toBe(1);
    expect(text.stderr).toMatch(/notes\.txt is not a bundle \(\.cbundle, gzip or age\): it starts with 7468657365206172/);

    const empty = await cli(["verify", await file("empty.cbundle", Buffer.alloc(0))]);
    expect(empty.stderr).toMatch(/empty\.cbundle is empty/);

    const missing = await cli(["verify", join(dir, "nope.cbundle")]);
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toBe(`continuity verify: cannot read ${join(dir, "nope.cbundle")}: no such file or directory`);
  });

  it("reads a bundle from stdin", async () => {
    const run = await cli(["verify", "-", "--jwks", jwksFile], { stdin: gzipSync(good) });
    expect(run.code).toBe(0);
    expect(run.out).toContain("stdin: the bundle verifies");
    expect(run.out).toMatch(/layers +gzip/);
  });
});

/** Byte offset of the last part's length prefix in a `.cbundle` file. */
function lastPartOffset(bytes: Buffer): number {
  let offset = 0;
  let last = 0;
  while (offset < bytes.length) {
    last = offset;
    offset += 4 + bytes.readUInt32BE(offset);
  }
  return last;
}

describe("inspect", () => {
  it("shows the manifest, a row per stream and the identity records", async () => {
    const path = await file("inspect.cbundle", good);
    const run = await cli(["inspect", path, "--jwks", jwksFile]);
    expect(run.code).toBe(0);
    const lines = run.out.split("\n");
    expect(lines).toContain("exporter   cli-test/1");
    expect(lines).toContain("created    2023-11-14T22:13:20.000Z");
    expect(lines).toContain("signature  verified with key exporter-1, one of the keys in " + jwksFile);
    const header = lines.find((line) => line.startsWith("STREAM"));
    expect(header?.split(/\s{2,}/)).toEqual(["STREAM", "UID", "TYPE", "HEAD", "HEAD HASH", "HORIZON", "DELTAS"]);
    const progress = lines.find((line) => line.startsWith("progress"))?.split(/\s+/);
    expect(progress).toEqual(["progress", UID_PROGRESS, "org.example.progress", "5", expect.stringMatching(/^[0-9a-f]{16}…$/), "2", "3"]);
    const cart = lines.find((line) => line.startsWith("cart"))?.split(/\s+/);
    expect(cart).toEqual(["cart", UID_CART, "org.example.progress", "3", expect.stringMatching(/^[0-9a-f]{16}…$/), "0", "3"]);
    expect(lines).toContain("checkpoints 1, account links 1, devices 1, grants 0 (and 1 snapshots, 6 deltas)");
    expect(lines).toContain("integrity  ok");

    const json = JSON.parse((await cli(["--json", "inspect", path])).out) as { streams: { streamId: string; headHash: string }[]; counts: object };
    expect(json.streams.map((s) => s.streamId)).toEqual(["progress", "cart"]);
    expect(json.streams[0]!.headHash).toMatch(/^[0-9a-f]{64}$/);
    expect(json.counts).toEqual({ streams: 2, snapshots: 1, deltas: 6, checkpoints: 1, accountLinks: 1, devices: 1, grants: 0 });
  });

  it("still shows a broken bundle as far as it goes, then fails", async () => {
    const { key } = await signingKey("k");
    const parts = await sealBundle(key, { mutate: (records) => records.splice(6, 1) });
    const run = await cli(["inspect", await file("dropped.cbundle", bundleFile(parts))]);
    expect(run.code).toBe(1);
    expect(run.out).toMatch(/^progress +/m);
    expect(run.out).toMatch(/^integrity +BROKEN: .*records\[6\]\.delta\.version: the stream 00000000-0000-4000-8000-00000000000b expects version 1 next, the record is version 2/m);
    expect(run.stderr).toMatch(/^continuity inspect: .*records\[6\]\.delta\.version/m);
  });
});

describe("compression and encryption at rest", () => {
  it("reads back what it wrote with gzip, age, and both", async () => {
    const alice = await identity("alice.key");
    for (const layers of [{ gzip: true, age: false }, { gzip: false, age: true }, { gzip: true, age: true }]) {
      const path = join(dir, `written-${layers.gzip}-${layers.age}.cbundle`);
      await writeBundleFile(path, Readable.from([good]), { gzip: layers.gzip, recipients: layers.age ? [alice.recipient] : [], force: false, stdout: process.stdout });
      expect((await stat(path)).mode & 0o777).toBe(0o600);
      const onDisk = await readFile(path);
      if (layers.age) expect(onDisk.subarray(0, 21).toString("latin1")).toBe("age-encryption.org/v1");
      else expect([...onDisk.subarray(0, 2)]).toEqual([0x1f, 0x8b]);
      const run = await cli(["--json", "verify", path, "--identity", alice.path, "--jwks", jwksFile]);
      expect(run.stderr).toBe("");
      expect(JSON.parse(run.out)).toMatchObject({ ok: true, records: 12, layers: [...(layers.age ? ["age"] : []), ...(layers.gzip ? ["gzip"] : [])] });
    }
  });

  it("compresses a bundle with repetitive payloads", async () => {
    const { key } = await signingKey("k");
    const big = bundleFile(await sealBundle(key, { cartDeltas: 600 }));
    const path = join(dir, "big.cbundle.gz");
    const written = await writeBundleFile(path, Readable.from([big]), { gzip: true, recipients: [], force: false, stdout: process.stdout });
    expect(written.fileBytes).toBeLessThan(big.length / 2);
    expect((await cli(["verify", path])).code).toBe(0);
  });

  it("fails clearly with the wrong key, without a key, and on a damaged file", async () => {
    const alice = await identity("alice2.key");
    const mallory = await identity("mallory.key");
    const encrypter = new Encrypter();
    encrypter.addRecipient(alice.recipient);
    const sealed = Buffer.from(await encrypter.encrypt(good));
    const path = await file("for-alice.cbundle.age", sealed);

    const wrong = await cli(["verify", path, "--identity", mallory.path]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr.trim()).toBe(`continuity verify: cannot decrypt ${path}: it is not encrypted to any identity in ${mallory.path} (wrong key)`);

    const none = await cli(["import", path, "--server", "127.0.0.1:1"]);
    expect(none.code).toBe(1);
    expect(none.stderr.trim()).toBe(`continuity import: ${path} is encrypted with age: give the identity file that opens it with --identity FILE`);

    const cut = await cli(["verify", await file("cut.cbundle.age", sealed.subarray(0, sealed.length - 20)), "--identity", alice.path]);
    expect(cut.code).toBe(1);
    expect(cut.stderr).toMatch(/cannot decrypt .*cut\.cbundle\.age: the age data is damaged or cut short/);

    const notAKey = await cli(["verify", path, "--identity", jwksFile]);
    expect(notAKey.stderr).toMatch(/is not an age identity file/);

    const cutGzip = await cli(["verify", await file("cut.cbundle.gz", gzipSync(good).subarray(0, 100))]);
    expect(cutGzip.code).toBe(1);
    expect(cutGzip.stderr).toMatch(/cut\.cbundle\.gz: the gzip data is cut short/);
  });
});

describe("keygen", () => {
  it("writes an identity file once, readable by its owner only, and tells its recipient", async () => {
    const path = join(dir, "k.txt");
    const first = await cli(["keygen", "-o", path]);
    expect(first.code).toBe(0);
    const text = await readFile(path, "utf8");
    expect(text).toMatch(/^# created: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n# public key: age1[0-9a-z]+\nAGE-SECRET-KEY-1[0-9A-Z]+\n$/);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const again = await cli(["keygen", "-o", path]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/cannot write .*k\.txt: it already exists/);
    const recipient = await cli(["keygen", "-y", path]);
    expect(recipient.out.trim()).toBe(/# public key: (\S+)/.exec(text)![1]);
  });
});

describe("the command line", () => {
  it("refuses unknown flags and missing arguments with exit status 2", async () => {
    const unknown = await cli(["verify", "x", "--frobnicate"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown option '--frobnicate'/);
    const missing = await cli(["export"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr.trim()).toBe("continuity export: which server: give --server or set CONTINUITY_SERVER");
  });

  it("checks what it can before it signs in: recipients, and a terminal as the bundle's destination", async () => {
    const typo = await cli(["export", "--encrypt-to", "age1xyz", "--server", "127.0.0.1:1"]);
    expect(typo.code).toBe(1);
    expect(typo.stderr).toMatch(/^continuity export: --encrypt-to age1xyz: not an age recipient \(/);
    const terminal = await cli(["export", "-o", "-", "--server", "127.0.0.1:1"], { stdoutIsTerminal: true });
    expect(terminal.code).toBe(2);
    expect(terminal.stderr).toMatch(/^continuity export: refusing to write a bundle to the terminal/);
    expect(terminal.stdout.length).toBe(0);
  });
});
