/**
 * The bundle as a file at rest: the `.cbundle` framing of @continuity/bundle, optionally
 * gzip-compressed, optionally encrypted to age recipients (compressed first, since encrypted
 * bytes do not compress). Readers tell the layers apart by their magic bytes, not by the file
 * name, so `continuity import -` takes whatever `continuity export -o -` wrote. The wire
 * protocol is untouched: this is only how the bytes sit in a file or travel through a pipe.
 *
 * Every layer is a stream with backpressure; nothing here holds more than a chunk and a part.
 */
import { randomBytes } from "node:crypto";
import { lstat, open, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip, createGzip } from "node:zlib";
import { DEFAULT_MAX_PART_BYTES } from "@continuity/bundle";
import { Decrypter, Encrypter } from "age-encryption";
import { CliError, fileProblem } from "../errors.js";

/** How a file wraps the bundle's bytes, outermost first. */
export type FileLayer = "age" | "gzip";

/** `age-encryption.org/v1\n`: the first line of every binary age file. */
const AGE_MAGIC = Buffer.from("age-encryption.org/v1\n", "latin1");
const AGE_ARMOR = Buffer.from("-----BEGIN AGE ENCRYPTED FILE-----", "latin1");
const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);
/** The first part of a plain bundle is an ExportSubjectResponse with `manifest` (field 1, length-delimited). */
const MANIFEST_TAG = 0x0a;
/** age inside gzip inside age… is not something export writes; a bound keeps a hostile file from nesting forever. */
const MAX_LAYERS = 4;
const READ_CHUNK_BYTES = 1024 * 1024;

/** A bundle file opened for reading. */
export interface BundleInput {
  /** What to call the input in messages: the path, or `stdin`. */
  readonly name: string;
  /** The plain `.cbundle` bytes, decrypted and decompressed as needed. */
  readonly bytes: AsyncIterable<Uint8Array>;
  /** The layers found, outermost first. */
  readonly layers: readonly FileLayer[];
  /** The file's size on disk, when it is a regular file. */
  readonly fileBytes: number | undefined;
  /** Bytes of the file read so far (before decryption and decompression). */
  fileBytesRead(): number;
}

/** Options of {@link openBundleFile}. */
export interface OpenBundleOptions {
  /** age identities to decrypt with (`AGE-SECRET-KEY-1…`). */
  readonly identities: readonly string[];
  /** The identity file(s) they came from, for messages. */
  readonly identitySource: string;
  /** Read when the path is `-`. */
  readonly stdin: NodeJS.ReadableStream;
}

/** Opens a bundle file, or stdin for `-`, and peels off its age and gzip layers. */
export async function openBundleFile(path: string, options: OpenBundleOptions): Promise<BundleInput> {
  const name = path === "-" ? "stdin" : path;
  let raw: AsyncIterable<Uint8Array>;
  let fileBytes: number | undefined;
  let fileStream: { destroy(): void } | undefined;
  if (path === "-") {
    raw = options.stdin as AsyncIterable<Uint8Array>;
  } else {
    let handle;
    try {
      handle = await open(path, "r");
      const stat = await handle.stat();
      if (stat.isDirectory()) throw Object.assign(new Error("is a directory"), { code: "EISDIR" });
      fileBytes = stat.isFile() ? stat.size : undefined;
    } catch (error) {
      await handle?.close();
      throw fileProblem("read", path, error);
    }
    const stream = handle.createReadStream({ highWaterMark: READ_CHUNK_BYTES });
    raw = stream;
    fileStream = stream;
  }
  let read = 0;
  const counted = (async function* () {
    try {
      for await (const chunk of raw) {
        read += chunk.length;
        yield chunk;
      }
    } catch (error) {
      throw isSystemError(error) ? fileProblem("read", name, error) : error;
    }
  })();
  const layers: FileLayer[] = [];
  let bytes: AsyncIterable<Uint8Array>;
  try {
    bytes = await unwrap(counted, name, layers, options);
  } catch (error) {
    fileStream?.destroy();
    throw error;
  }
  return { name, bytes, layers, fileBytes, fileBytesRead: () => read };
}

async function unwrap(source: AsyncIterable<Uint8Array>, name: string, layers: FileLayer[], options: OpenBundleOptions): Promise<AsyncIterable<Uint8Array>> {
  const { head, all } = await peek(source, AGE_MAGIC.length);
  const inside = layers.length === 0 ? name : `${name} (inside its ${layers.join(" and ")} layer)`;
  if (startsWith(head, AGE_MAGIC) || startsWith(head, GZIP_MAGIC)) {
    if (layers.length >= MAX_LAYERS) throw new CliError(`${name}: more than ${MAX_LAYERS} layers of encryption and compression; this is not a file continuity wrote`);
  }
  if (startsWith(head, AGE_MAGIC)) {
    layers.push("age");
    return unwrap(await decrypt(all, name, options), name, layers, options);
  }
  if (startsWith(head, GZIP_MAGIC)) {
    layers.push("gzip");
    return unwrap(gunzip(all, name), name, layers, options);
  }
  if (startsWith(head, AGE_ARMOR)) {
    throw new CliError(`${inside} is an ASCII-armored age file; continuity reads binary age files (decrypt it with \`age -d\`, or re-encrypt without -a)`);
  }
  if (head.length === 0) throw new CliError(`${inside} is empty: it holds no bundle`);
  const declared = head.length >= 4 ? head.readUInt32BE(0) : 0;
  if (head.length < 5 || declared > DEFAULT_MAX_PART_BYTES || head[4] !== MANIFEST_TAG) {
    throw new CliError(`${inside} is not a bundle (.cbundle, gzip or age): it starts with ${head.subarray(0, 8).toString("hex")}`);
  }
  return all;
}

async function decrypt(source: AsyncIterable<Uint8Array>, name: string, options: OpenBundleOptions): Promise<AsyncIterable<Uint8Array>> {
  if (options.identities.length === 0) throw new CliError(`${name} is encrypted with age: give the identity file that opens it with --identity FILE`);
  const decrypter = new Decrypter();
  for (const identity of options.identities) decrypter.addIdentity(identity);
  let plain: ReadableStream<Uint8Array>;
  try {
    plain = await decrypter.decrypt(Readable.toWeb(Readable.from(source)) as ReadableStream<Uint8Array>);
  } catch (error) {
    throw ageProblem(error, name, options.identitySource);
  }
  return translated(plain, (error) => ageProblem(error, name, options.identitySource));
}

function ageProblem(error: unknown, name: string, identitySource: string): unknown {
  if (error instanceof CliError) return error;
  const message = (error as Error).message;
  if (/no identity matched/.test(message)) {
    return new CliError(`cannot decrypt ${name}: it is not encrypted to any identity in ${identitySource} (wrong key)`, undefined, { reason: "AGE_NO_MATCHING_IDENTITY" }, { cause: error });
  }
  return new CliError(`cannot decrypt ${name}: the age data is damaged or cut short (${message})`, undefined, { reason: "AGE_DAMAGED" }, { cause: error });
}

function gunzip(source: AsyncIterable<Uint8Array>, name: string): AsyncIterable<Uint8Array> {
  const inflater = createGunzip();
  // The promise settles when the inflater finishes or fails; its error also reaches the
  // iteration below, which is where it is reported.
  pipeline(Readable.from(source), inflater).catch(() => undefined);
  return translated(inflater, (error) => {
    if (error instanceof CliError) return error;
    const code = (error as NodeJS.ErrnoException).code;
    const what = code === "Z_BUF_ERROR" ? "the gzip data is cut short" : "the gzip data is damaged";
    return new CliError(`${name}: ${what} (${(error as Error).message})`, undefined, { reason: "GZIP_DAMAGED" }, { cause: error });
  });
}

/** Re-throws what iterating `source` throws as `translate` says. */
async function* translated(source: AsyncIterable<Uint8Array>, translate: (error: unknown) => unknown): AsyncGenerator<Uint8Array> {
  try {
    for await (const chunk of source) yield chunk;
  } catch (error) {
    throw translate(error);
  }
}

/** Reads until `n` bytes (or the end) are in hand; `all` yields those and then the rest. */
async function peek(source: AsyncIterable<Uint8Array>, n: number): Promise<{ head: Buffer; all: AsyncIterable<Uint8Array> }> {
  const iterator = source[Symbol.asyncIterator]();
  const buffered: Uint8Array[] = [];
  let size = 0;
  let ended = false;
  while (size < n) {
    const next = await iterator.next();
    if (next.done === true) {
      ended = true;
      break;
    }
    buffered.push(next.value);
    size += next.value.length;
  }
  const head = Buffer.concat(buffered).subarray(0, n);
  async function* all(): AsyncGenerator<Uint8Array> {
    try {
      yield* buffered.splice(0);
      while (!ended) {
        const next = await iterator.next();
        if (next.done === true) return;
        yield next.value;
      }
    } finally {
      await iterator.return?.();
    }
  }
  return { head, all: all() };
}

/** An error of the operating system (a file or pipe), as opposed to one of this program. */
function isSystemError(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).code === "string" && typeof (error as NodeJS.ErrnoException).syscall === "string";
}

function startsWith(bytes: Buffer, prefix: Buffer): boolean {
  return bytes.length >= prefix.length && bytes.subarray(0, prefix.length).equals(prefix);
}

/** Options of {@link writeBundleFile}. */
export interface BundleOutputOptions {
  readonly gzip: boolean;
  /** age recipients (`age1…`); none means no encryption. */
  readonly recipients: readonly string[];
  /** Replace an existing file. */
  readonly force: boolean;
  /** Written to when the path is `-`. */
  readonly stdout: Writable;
}

/** What {@link writeBundleFile} wrote. */
export interface WrittenBundle {
  readonly path: string;
  readonly layers: readonly FileLayer[];
  /** Bytes of the file (after compression and encryption). */
  readonly fileBytes: number;
}

/**
 * Writes the plain bundle bytes to `path` (or stdout for `-`) through the chosen layers. A
 * file is written under a temporary name in the same directory and renamed when complete, so
 * a failed or interrupted export never leaves something that looks like a bundle; it is
 * created readable by its owner only, since a bundle is a person's whole history.
 */
export async function writeBundleFile(path: string, plain: AsyncIterable<Uint8Array>, options: BundleOutputOptions): Promise<WrittenBundle> {
  const layers: FileLayer[] = [];
  let bytes: AsyncIterable<Uint8Array> = plain;
  if (options.gzip) {
    layers.push("gzip");
    const deflater = createGzip();
    pipeline(Readable.from(bytes), deflater).catch(() => undefined);
    bytes = deflater;
  }
  if (options.recipients.length > 0) {
    layers.push("age");
    const encrypter = new Encrypter();
    for (const recipient of options.recipients) {
      try {
        encrypter.addRecipient(recipient);
      } catch (error) {
        throw new CliError(`--encrypt-to ${recipient}: not an age recipient (${(error as Error).message})`, undefined, {}, { cause: error });
      }
    }
    bytes = await encrypter.encrypt(Readable.toWeb(Readable.from(bytes)) as ReadableStream<Uint8Array>);
  }
  let written = 0;
  const counted = (async function* () {
    for await (const chunk of bytes) {
      written += chunk.length;
      yield chunk;
    }
  })();

  if (path === "-") {
    await pipeline(Readable.from(counted), options.stdout, { end: false });
    return { path, layers, fileBytes: written };
  }
  if (!options.force) {
    const exists = await lstat(path).then(
      () => true,
      () => false,
    );
    if (exists) throw fileProblem("write", path, Object.assign(new Error("exists"), { code: "EEXIST" }));
  }
  const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString("hex")}.partial`);
  let handle;
  try {
    handle = await open(temporary, "wx", 0o600);
  } catch (error) {
    throw fileProblem("write", path, error);
  }
  try {
    await pipeline(Readable.from(counted), handle.createWriteStream());
    await rename(temporary, path);
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw isSystemError(error) ? fileProblem("write", path, error) : error;
  } finally {
    await handle.close().catch(() => undefined);
  }
  return { path, layers, fileBytes: written };
}
