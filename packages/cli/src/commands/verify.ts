import { checkBundle } from "../bundle-check.js";
import { createReporter, type CliIo, type OutputFlags } from "../context.js";
import { formatBytes, hex } from "../ui/format.js";
import { openInput, trustedKeys, type TrustedKeyFlags } from "./inputs.js";

/** Flags of `continuity verify`. */
export interface VerifyFlags extends OutputFlags, TrustedKeyFlags {
  readonly identity?: string[];
}

/**
 * `continuity verify FILE`: checks a bundle offline — framing, record order, every hash chain
 * and snapshot hash, the manifest's summaries, record count, records digest and, given keys,
 * the exporter's signature. Fails on the first problem with the record that has it.
 */
export async function verifyCommand(file: string, flags: VerifyFlags, io: CliIo): Promise<void> {
  const report = createReporter(io, flags);
  const keys = await trustedKeys(flags);
  const input = await openInput(file, flags.identity, io);
  const progress = report.progress("verify");
  let bundle;
  try {
    bundle = await checkBundle(input.name, input.bytes, {
      jwks: keys.jwks,
      onPart: (check) => progress.update({ records: check.records, totalRecords: check.expectedRecords, bytes: check.bundleBytes }),
    });
    progress.stop({ records: bundle.records, bytes: bundle.bundleBytes });
  } finally {
    progress.stop();
  }
  const signature =
    bundle.signedBy === undefined
      ? "not checked (give --jwks FILE or --server ADDRESS)"
      : `verified with key ${bundle.signedBy}, one of ${keys.source}`;
  report.result(
    {
      file: input.name,
      layers: input.layers,
      exporter: bundle.manifest.exporter,
      streams: bundle.manifest.streams.length,
      records: bundle.records,
      recordsDigest: hex(bundle.recordsDigest),
      bundleBytes: bundle.bundleBytes,
      signature: bundle.signedBy === undefined ? { checked: false } : { checked: true, kid: bundle.signedBy },
    },
    [
      `${input.name}: the bundle verifies`,
      `  layers     ${input.layers.length === 0 ? "none (plain .cbundle)" : input.layers.join(", ")}`,
      `  exporter   ${bundle.manifest.exporter}`,
      `  streams    ${bundle.manifest.streams.length}`,
      `  records    ${bundle.records} (${formatBytes(bundle.bundleBytes)})`,
      `  digest     ${hex(bundle.recordsDigest)}`,
      `  signature  ${signature}`,
    ].join("\n"),
  );
}
