/**
 * Every command that moves a bundle checks it on the way with @continuity/bundle's verifier
 * (the one the reference server imports with): export before it keeps a file, import before
 * the server sees the trailer, verify and inspect as their whole job. This wraps the verifier
 * with what the CLI reports: counts per record kind, bytes, an estimate of the records to come
 * for progress, and the first problem as one line naming the record and where it sits.
 */
import { BundleFramingError, BundleVerificationError, createBundleVerifier, readFrames, type VerifiedPart } from "@continuity/bundle";
import type { v1 } from "@continuity/sdk";
import type { JSONWebKeySet } from "jose";
import { bundleProblem, CliError } from "./errors.js";
import { readJsonFile } from "./file/text-file.js";

/** Records of each kind seen so far. */
export interface RecordCounts {
  streams: number;
  snapshots: number;
  deltas: number;
  checkpoints: number;
  accountLinks: number;
  devices: number;
  grants: number;
}

/** A bundle that verified. */
export interface CheckedBundle {
  readonly manifest: v1.BundleManifest;
  readonly trailer: v1.BundleTrailer;
  readonly recordsDigest: Uint8Array;
  /** The `kid` whose signature verified; undefined when no key set was given. */
  readonly signedBy: string | undefined;
  readonly records: number;
  /** Bytes of the plain `.cbundle` form (parts and their length prefixes). */
  readonly bundleBytes: number;
  readonly counts: Readonly<RecordCounts>;
}

/** A verifier with the CLI's bookkeeping around it. */
export interface BundleCheck {
  /** Checks the next part; throws a {@link CliError} naming the first problem. */
  push(part: Uint8Array): Promise<VerifiedPart>;
  /** Throws unless the bundle is complete. */
  finish(): CheckedBundle;
  readonly records: number;
  readonly bundleBytes: number;
  /** Stream, snapshot and delta records the manifest announces (identity records are not counted there). */
  readonly expectedRecords: number | undefined;
  readonly counts: Readonly<RecordCounts>;
  readonly manifest: v1.BundleManifest | undefined;
}

/** Starts checking a bundle; `name` says whose bundle in messages (a file, `the bundle from host:port`). */
export function createBundleCheck(name: string, options: { readonly jwks?: JSONWebKeySet | undefined } = {}): BundleCheck {
  const verifier = createBundleVerifier(options.jwks === undefined ? {} : { jwks: options.jwks });
  const counts: RecordCounts = { streams: 0, snapshots: 0, deltas: 0, checkpoints: 0, accountLinks: 0, devices: 0, grants: 0 };
  let records = 0;
  let bundleBytes = 0;
  let expectedRecords: number | undefined;
  let manifest: v1.BundleManifest | undefined;
  return {
    async push(part) {
      const offset = bundleBytes;
      bundleBytes += 4 + part.length;
      let verified: VerifiedPart;
      try {
        verified = await verifier.push(part);
      } catch (error) {
        if (error instanceof BundleVerificationError) throw bundleProblem(name, error, offset);
        throw error;
      }
      switch (verified.kind) {
        case "manifest":
          manifest = verified.manifest;
          expectedRecords = expectedStreamRecords(verified.manifest);
          break;
        case "trailer":
          break;
        case "stream":
          counts.streams += 1;
          break;
        case "snapshot":
          counts.snapshots += 1;
          break;
        case "delta":
          counts.deltas += 1;
          break;
        case "checkpoint":
          counts.checkpoints += 1;
          break;
        case "accountLink":
          counts.accountLinks += 1;
          break;
        case "device":
          counts.devices += 1;
          break;
        case "grant":
          counts.grants += 1;
          break;
      }
      if (verified.kind !== "manifest" && verified.kind !== "trailer") records += 1;
      return verified;
    },
    finish() {
      let result;
      try {
        result = verifier.finish();
      } catch (error) {
        if (error instanceof BundleVerificationError) throw bundleProblem(name, error);
        throw error;
      }
      return { ...result, records, bundleBytes, counts: { ...counts } };
    },
    get records() {
      return records;
    },
    get bundleBytes() {
      return bundleBytes;
    },
    get expectedRecords() {
      return expectedRecords;
    },
    get counts() {
      return counts;
    },
    get manifest() {
      return manifest;
    },
  };
}

function expectedStreamRecords(manifest: v1.BundleManifest): number {
  let total = 0;
  for (const stream of manifest.streams) {
    const full = stream.deltaCount === stream.headVersion - stream.horizonVersion;
    total += 1 + Number(stream.deltaCount) + (full && stream.horizonVersion > 0n ? 1 : 0);
  }
  return total;
}

/**
 * The parts of a plain `.cbundle` byte stream, with framing problems (a cut-off file, a length
 * beyond the reader's bound) reported like any other problem of the bundle.
 */
export async function* bundleParts(name: string, bytes: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  try {
    yield* readFrames(bytes);
  } catch (error) {
    if (error instanceof BundleFramingError) throw bundleProblem(name, error);
    throw error;
  }
}

/** Checks a whole bundle, calling `onPart` after each part. */
export async function checkBundle(name: string, bytes: AsyncIterable<Uint8Array>, options: { readonly jwks?: JSONWebKeySet | undefined; readonly onPart?: (check: BundleCheck, part: VerifiedPart) => void } = {}): Promise<CheckedBundle> {
  const check = createBundleCheck(name, options);
  for await (const part of bundleParts(name, bytes)) {
    const verified = await check.push(part);
    options.onPart?.(check, verified);
  }
  return check.finish();
}

/** Parses a JSON Web Key Set, from a file or from ServerInfo.bundle_signing_jwks. */
export function parseJwks(text: unknown, source: string): JSONWebKeySet {
  let value = text;
  if (typeof value === "string") {
    try {
      value = JSON.parse(value) as unknown;
    } catch (error) {
      throw new CliError(`${source} is not a JSON Web Key Set: ${(error as Error).message}`, undefined, {}, { cause: error });
    }
  }
  const keys = (value as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0) throw new CliError(`${source} is not a JSON Web Key Set: it needs a non-empty "keys" array`);
  return value as JSONWebKeySet;
}

/** Reads a JWKS file. */
export async function readJwksFile(path: string): Promise<JSONWebKeySet> {
  return parseJwks(await readJsonFile(path, "a JSON Web Key Set"), path);
}
