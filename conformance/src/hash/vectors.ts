/**
 * Typed access to the committed test vectors in conformance/vectors (format: README.md there).
 * Shared by this package's tests and the SDK's, so both read the same files the same way.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** Genesis vector. */
export interface GenesisVector {
  id: string;
  description: string;
  input: { uid: string; type: string; encoding: number };
  preimageHex: string;
  hashHex: string;
}

/** One delta as a client sent it and a server stored and hashed it. */
export interface DeltaStep {
  version: string;
  clientPayloadHex: string;
  payloadHex: string;
  prevHashHex: string;
  preimageHex: string;
  hashHex: string;
  /** Canonical JSON state after this delta (JSON chains; only some steps of long chains). */
  stateHex?: string;
}

/** Single-delta vector. */
export interface DeltaVector {
  id: string;
  description: string;
  input: Omit<DeltaStep, "preimageHex" | "hashHex" | "stateHex"> & { encoding: number };
  payloadText?: string;
  preimageHex: string;
  hashHex: string;
}

/** Chain vector: every step from the genesis to the head. */
export interface ChainVector {
  id: string;
  description: string;
  stream: { uid: string; type: string; encoding: number };
  genesisHashHex: string;
  steps: DeltaStep[];
  headVersion: string;
  headHashHex: string;
}

/** Snapshot vector. */
export interface SnapshotVector {
  id: string;
  description: string;
  input: { streamUid: string; version: string; headHashHex: string; encoding: number; stateHex: string };
  preimageHex: string;
  hashHex: string;
}

/** Resume payload fields in vectors (`null` for an unset payload). */
export interface ResumeInput {
  activityType?: string;
  resource?: string;
  position?: string;
  fallbackUrl?: string;
  attributes?: Record<string, string>;
}

/** Resume payload vector. */
export interface ResumeVector {
  id: string;
  description: string;
  input: ResumeInput | null;
  canonicalHex: string;
  canonicalText: string;
  byteLength: number;
  withinLimit: boolean;
}

/** Checkpoint vector. */
export interface CheckpointVector {
  id: string;
  description: string;
  input: { entries: { streamUid: string; version: string; headHashHex: string }[]; resume: ResumeInput };
  resumeHex: string;
  preimageHex: string;
  digestHex: string;
}

/** Canonical JSON vector. */
export interface CanonicalJsonVector {
  id: string;
  description: string;
  inputHex: string;
  canonicalHex: string;
  canonicalText: string;
}

/** Bytes that must be refused as a JSON document. */
export interface MalformedJsonVector {
  id: string;
  description: string;
  inputHex: string;
  reason: string;
}

/** Materialization vector: states after each patch, or the patch that must fail. */
export interface MaterializeVector {
  id: string;
  description: string;
  encoding: number;
  initialStateHex: string;
  steps: { patchHex: string; stateHex: string }[];
  finalStateText?: string;
  failing?: { patchHex: string; outcome: "malformed" | "not-applicable" };
}

/** Every vector file, by name. */
export interface VectorFiles {
  "genesis.json": GenesisVector[];
  "delta.json": DeltaVector[];
  "chain.json": ChainVector[];
  "snapshot.json": SnapshotVector[];
  "resume.json": ResumeVector[];
  "checkpoint.json": CheckpointVector[];
  "canonical-json.json": CanonicalJsonVector[];
  "malformed-json.json": MalformedJsonVector[];
  "materialize.json": MaterializeVector[];
}

/** The files `loadVectorFiles` reads. */
export const VECTOR_FILES = [
  "genesis.json",
  "delta.json",
  "chain.json",
  "snapshot.json",
  "resume.json",
  "checkpoint.json",
  "canonical-json.json",
  "malformed-json.json",
  "materialize.json",
] as const satisfies readonly (keyof VectorFiles)[];

/** Reads every committed vector file, checking the format version. */
export function loadVectorFiles(directory: URL = new URL("../../vectors/", import.meta.url)): VectorFiles {
  const files: Partial<Record<keyof VectorFiles, unknown[]>> = {};
  for (const name of VECTOR_FILES) {
    const parsed = JSON.parse(readFileSync(fileURLToPath(new URL(name, directory)), "utf8")) as { formatVersion: number; vectors: unknown[] };
    if (parsed.formatVersion !== 1) throw new Error(`${name}: unsupported formatVersion ${parsed.formatVersion}`);
    files[name] = parsed.vectors;
  }
  return files as VectorFiles;
}
