import { open } from "node:fs/promises";
import { createReporter, type CliIo, type OutputFlags } from "../context.js";
import { fileProblem } from "../errors.js";
import { generateIdentityFile, recipientsOfIdentityFile } from "../file/age-keys.js";

/** Flags of `continuity keygen`. */
export interface KeygenFlags extends OutputFlags {
  readonly output?: string;
  readonly postQuantum?: boolean;
  /** Print the recipients of this identity file instead of making one. */
  readonly recipientOf?: string;
}

/**
 * `continuity keygen`: writes a new age identity file, as age-keygen does (the same format, so
 * either tool reads the other's keys), and prints its recipient — the public key to give
 * `continuity export --encrypt-to`. The file is created readable by its owner only and never
 * overwrites one that exists.
 */
export async function keygenCommand(flags: KeygenFlags, io: CliIo): Promise<void> {
  if (flags.recipientOf !== undefined) {
    const recipients = await recipientsOfIdentityFile(flags.recipientOf);
    createReporter(io, flags).result({ recipients }, recipients.join("\n"));
    return;
  }
  const report = createReporter(io, flags, flags.output === undefined || flags.output === "-");
  const { text, recipient } = await generateIdentityFile({ postQuantum: flags.postQuantum === true, now: new Date() });
  const path = flags.output ?? "-";
  if (path === "-") {
    io.stdout.write(text);
  } else {
    try {
      const handle = await open(path, "wx", 0o600);
      try {
        await handle.writeFile(text);
      } finally {
        await handle.close();
      }
    } catch (error) {
      throw fileProblem("write", path, error);
    }
  }
  report.result({ file: path, recipient }, `Public key: ${recipient}`);
}
