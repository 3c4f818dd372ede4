import { framePrefix } from "@continuity/bundle";
import { createBundleCheck, parseJwks } from "../bundle-check.js";
import { createReporter, type CliIo, type OutputFlags } from "../context.js";
import { asCallProblem, CliError, EXIT_INTERRUPTED, EXIT_USAGE } from "../errors.js";
import { resolveRecipients } from "../file/age-keys.js";
import { writeBundleFile } from "../file/bundle-file.js";
import { signIn, type SignedInServer } from "../net/server-session.js";
import { formatBytes, hex } from "../ui/format.js";
import type { ServerFlags } from "./server-flags.js";

/** Flags of `continuity export`. */
export interface ExportFlags extends OutputFlags, ServerFlags {
  readonly output?: string;
  readonly gzip?: boolean;
  readonly encryptTo?: string[];
  readonly force?: boolean;
}

/**
 * `continuity export`: the signed-in account's whole subject as a bundle file. The parts are
 * written exactly as the server sent them, each behind its length prefix, and checked on the
 * way with the verifier (and against the server's published signing keys), so a file is only
 * kept when it is a bundle any importer will accept.
 */
export async function exportCommand(flags: ExportFlags, io: CliIo): Promise<void> {
  const toStdout = flags.output === "-";
  const report = createReporter(io, flags, toStdout);
  if (toStdout && io.stdout.isTTY === true) throw new CliError("refusing to write a bundle to the terminal: give -o FILE, or pipe stdout into a file or into `continuity import -`", EXIT_USAGE);
  const recipients = await resolveRecipients(flags.encryptTo ?? []);
  const server = await signIn({ address: flags.server, platformId: flags.platformId, platformKeyFile: flags.platformKey, accountId: flags.account, flagPrefix: "" });
  const aborted = new AbortController();
  const stopListening = io.onInterrupt(() => aborted.abort(new CliError("export interrupted; no file was kept", EXIT_INTERRUPTED)));
  try {
    const subjectId = server.subject.slice("subjects/".length);
    const path = flags.output ?? `${subjectId}.cbundle${flags.gzip === true ? ".gz" : ""}${recipients.length > 0 ? ".age" : ""}`;
    const published = server.info.bundleSigningJwks;
    const jwks = published === "" ? undefined : parseJwks(published, `ServerInfo.bundle_signing_jwks of ${server.address}`);
    const check = createBundleCheck(`the bundle ${server.address} sent`, { jwks });
    const progress = report.progress("export");
    let written;
    try {
      written = await writeBundleFile(path, framed(server, check, aborted.signal, (records, bytes) => progress.update({ records, totalRecords: check.expectedRecords, bytes })), {
        gzip: flags.gzip === true,
        recipients,
        force: flags.force === true,
        stdout: io.stdout,
      });
      progress.stop({ records: check.records, bytes: check.bundleBytes });
    } catch (error) {
      throw aborted.signal.aborted ? aborted.signal.reason : asCallProblem("ExportSubject", server.address, error);
    } finally {
      progress.stop();
    }
    const bundle = check.finish();
    report.result(
      {
        subject: server.subject,
        file: written.path,
        layers: written.layers,
        fileBytes: written.fileBytes,
        bundleBytes: bundle.bundleBytes,
        streams: bundle.manifest.streams.length,
        records: bundle.records,
        recordsDigest: hex(bundle.recordsDigest),
        signature: bundle.signedBy === undefined ? { checked: false } : { checked: true, kid: bundle.signedBy },
      },
      [
        `exported ${server.subject} from ${server.address} to ${written.path === "-" ? "stdout" : written.path}`,
        `  streams    ${bundle.manifest.streams.length}`,
        `  records    ${bundle.records} (${formatBytes(bundle.bundleBytes)} as a bundle, ${formatBytes(written.fileBytes)} written${written.layers.length === 0 ? "" : `, ${written.layers.join(" then ")}`})`,
        `  digest     ${hex(bundle.recordsDigest)}`,
        `  signature  ${bundle.signedBy === undefined ? "not checked: the server publishes no bundle signing keys" : `verified with the server's key ${bundle.signedBy}`}`,
      ].join("\n"),
    );
  } finally {
    stopListening();
    server.close();
  }
}

/** The bundle in `.cbundle` framing: each part as received, behind its length prefix. */
async function* framed(server: SignedInServer, check: ReturnType<typeof createBundleCheck>, signal: AbortSignal, onProgress: (records: number, bytes: number) => void): AsyncGenerator<Uint8Array> {
  const parts = server.raw.exportSubject(server.subject, await server.callMetadata(), signal);
  for await (const part of parts) {
    await check.push(part);
    onProgress(check.records, check.bundleBytes);
    yield framePrefix(part.length);
    yield part;
  }
  check.finish();
}
