import { bundleParts, createBundleCheck, type BundleCheck, type CheckedBundle } from "../bundle-check.js";
import { createReporter, type CliIo, type OutputFlags } from "../context.js";
import { CliError, EXIT_SUCCESS } from "../errors.js";
import { formatBytes, formatTable, hex, toJsonText } from "../ui/format.js";
import { openInput, trustedKeys, type TrustedKeyFlags } from "./inputs.js";

/** Flags of `continuity inspect`. */
export interface InspectFlags extends OutputFlags, TrustedKeyFlags {
  readonly identity?: string[];
}

/** Hex digits of a head hash shown in the table; `--json` has them all. */
const SHORT_HASH = 16;

/**
 * `continuity inspect FILE`: the manifest and a summary per stream, and how many checkpoints,
 * account links, devices and grants the bundle carries. It reads the whole bundle through the
 * verifier, so what it shows is what an importer would see; a bundle that does not verify is
 * still shown as far as it goes, with the problem, and the command fails.
 */
export async function inspectCommand(file: string, flags: InspectFlags, io: CliIo): Promise<number> {
  const report = createReporter(io, flags);
  const keys = await trustedKeys(flags);
  const input = await openInput(file, flags.identity, io);
  const check = createBundleCheck(input.name, { jwks: keys.jwks });
  const progress = report.progress("inspect");
  let bundle: CheckedBundle | undefined;
  let problem: CliError | undefined;
  try {
    for await (const part of bundleParts(input.name, input.bytes)) {
      await check.push(part);
      progress.update({ records: check.records, totalRecords: check.expectedRecords, bytes: check.bundleBytes });
    }
    bundle = check.finish();
    progress.stop({ records: check.records, bytes: check.bundleBytes });
  } catch (error) {
    if (!(error instanceof CliError) || check.manifest === undefined) throw error;
    problem = error;
  } finally {
    progress.stop();
  }

  const manifest = check.manifest!;
  const streams = manifest.streams.map((s) => ({
    streamId: s.streamId,
    streamUid: s.streamUid,
    type: s.type,
    headVersion: s.headVersion.toString(),
    headHash: hex(s.headHash),
    horizonVersion: s.horizonVersion.toString(),
    deltaCount: s.deltaCount.toString(),
  }));
  const integrity = problem === undefined ? "ok" : `BROKEN: ${problem.message}`;
  const signature = signatureLine(bundle, keys.source);
  const value = {
    file: input.name,
    layers: input.layers,
    manifest: { formatVersion: manifest.formatVersion, exporter: manifest.exporter, createTime: manifest.createTime?.toISOString() },
    streams,
    counts: check.counts,
    records: check.records,
    bundleBytes: check.bundleBytes,
    recordsDigest: bundle === undefined ? undefined : hex(bundle.recordsDigest),
    signature: bundle?.signedBy === undefined ? { checked: false } : { checked: true, kid: bundle.signedBy },
    integrity: problem === undefined ? { ok: true } : { ok: false, error: problem.message, ...problem.facts },
  };
  const text = [
    `bundle     ${input.name}${input.layers.length === 0 ? "" : ` (${input.layers.join(", ")})`}`,
    `format     ${manifest.formatVersion}`,
    `exporter   ${manifest.exporter}`,
    `created    ${manifest.createTime?.toISOString() ?? "(not set)"}`,
    `records    ${check.records}${bundle === undefined ? " read before the problem" : ""} (${formatBytes(check.bundleBytes)})`,
    ...(bundle === undefined ? [] : [`digest     ${hex(bundle.recordsDigest)}`, `signature  ${signature}`]),
    "",
    streams.length === 0
      ? "no streams"
      : formatTable(
          ["STREAM", "UID", "TYPE", "HEAD", "HEAD HASH", "HORIZON", "DELTAS"],
          streams.map((s) => [s.streamId, s.streamUid, s.type, BigInt(s.headVersion), `${s.headHash.slice(0, SHORT_HASH)}…`, BigInt(s.horizonVersion), BigInt(s.deltaCount)]),
        ),
    "",
    countsLine(check),
    `integrity  ${integrity}`,
  ].join("\n");
  if (problem === undefined) {
    report.result(value, text);
    return EXIT_SUCCESS;
  }
  // A broken bundle is still summarized as far as it goes: that is what a person debugging
  // the file wants to see. The command fails all the same.
  if (report.json) {
    report.out.write(`${toJsonText({ ok: false, ...value })}\n`);
  } else {
    report.out.write(`${text}\n`);
    io.stderr.write(`continuity inspect: ${problem.message}\n`);
  }
  return problem.exitCode;
}

function countsLine(check: BundleCheck): string {
  const c = check.counts;
  return `checkpoints ${c.checkpoints}, account links ${c.accountLinks}, devices ${c.devices}, grants ${c.grants} (and ${c.snapshots} snapshots, ${c.deltas} deltas)`;
}

function signatureLine(bundle: CheckedBundle | undefined, source: string | undefined): string {
  if (bundle === undefined) return "";
  return bundle.signedBy === undefined ? "not checked (give --jwks FILE or --server ADDRESS)" : `verified with key ${bundle.signedBy}, one of ${source}`;
}
