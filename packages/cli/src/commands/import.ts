import { createBundleCheck, bundleParts } from "../bundle-check.js";
import { createReporter, type CliIo, type OutputFlags } from "../context.js";
import { asCallProblem, CliError, EXIT_INTERRUPTED } from "../errors.js";
import { signIn } from "../net/server-session.js";
import { formatBytes } from "../ui/format.js";
import { openInput, trustedKeys, type TrustedKeyFlags } from "./inputs.js";
import type { ServerFlags } from "./server-flags.js";

/** Flags of `continuity import`. */
export interface ImportFlags extends OutputFlags, ServerFlags {
  readonly identity?: string[];
  /** Refuse a bundle whose signature does not verify with the keys in this JWKS file. */
  readonly jwks?: string;
}

/**
 * `continuity import FILE|-`: sends a bundle to the server, into the signed-in account's
 * subject. The file is streamed part by part as raw bytes, checked on the way by the same
 * verifier the server uses, so a damaged file is refused here with the record at fault
 * before the server sees a trailer. Importing again is harmless: the server skips what it has.
 */
export async function importCommand(file: string, flags: ImportFlags, io: CliIo): Promise<void> {
  const report = createReporter(io, flags);
  const keys = await trustedKeys({ jwks: flags.jwks });
  const input = await openInput(file, flags.identity, io);
  const server = await signIn({ address: flags.server, platformId: flags.platformId, platformKeyFile: flags.platformKey, accountId: flags.account, flagPrefix: "" });
  const aborted = new AbortController();
  const stopListening = io.onInterrupt(() => aborted.abort(new CliError("import interrupted; run it again to complete it (records already stored are skipped)", EXIT_INTERRUPTED)));
  const check = createBundleCheck(input.name, { jwks: keys.jwks });
  const progress = report.progress("import");
  try {
    const parts = async function* () {
      for await (const part of bundleParts(input.name, input.bytes)) {
        await check.push(part);
        progress.update({ records: check.records, totalRecords: check.expectedRecords, bytes: check.bundleBytes });
        yield part;
      }
      check.finish();
    };
    let response;
    try {
      response = await server.raw.importBundle(parts(), await server.callMetadata(), aborted.signal);
      progress.stop({ records: check.records, bytes: check.bundleBytes });
    } catch (error) {
      throw aborted.signal.aborted ? aborted.signal.reason : asCallProblem("ImportBundle", server.address, error);
    } finally {
      progress.stop();
    }
    const bundle = check.finish();
    report.result(
      {
        file: input.name,
        layers: input.layers,
        subject: response.subject,
        streams: bundle.manifest.streams.length,
        records: bundle.records,
        recordsImported: response.recordsImported.toString(),
        recordsSkipped: response.recordsSkipped.toString(),
        signature: bundle.signedBy === undefined ? { checked: false } : { checked: true, kid: bundle.signedBy },
      },
      [
        `imported ${input.name} into ${response.subject} on ${server.address}`,
        `  streams    ${bundle.manifest.streams.length}`,
        `  records    ${bundle.records} (${formatBytes(bundle.bundleBytes)}): ${response.recordsImported} stored, ${response.recordsSkipped} already there`,
        ...(bundle.signedBy === undefined ? [] : [`  signature  verified with key ${bundle.signedBy}, one of ${keys.source}`]),
      ].join("\n"),
    );
  } finally {
    stopListening();
    server.close();
  }
}
