/**
 * age keys as the `age` tools write them: an identity file holds `AGE-SECRET-KEY-1…` lines
 * (and `#` comments), a recipient is an `age1…` string or a file of them, one a line. Keeping
 * the formats of age-keygen means a bundle encrypted here opens with `age -d -i key.txt`, and
 * the other way round.
 */
import { Encrypter, generateHybridIdentity, generateX25519Identity, identityToRecipient } from "age-encryption";
import { CliError } from "../errors.js";
import { readTextFile } from "./text-file.js";

const IDENTITY_PREFIX = "AGE-SECRET-KEY-";
const RECIPIENT_PREFIX = "age1";

function keyLines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"));
}

/** The identities of an identity file, for decrypting. */
export async function readIdentities(path: string): Promise<string[]> {
  const lines = keyLines(await readTextFile(path, "an age identity file"));
  const identities = lines.filter((line) => line.startsWith(IDENTITY_PREFIX));
  if (identities.length === 0 || identities.length !== lines.length) {
    throw new CliError(`${path} is not an age identity file: it must hold AGE-SECRET-KEY-1… lines (make one with \`continuity keygen\`)`);
  }
  return identities;
}

/**
 * The recipients named by `--encrypt-to` values: each is an `age1…` recipient, or the path of
 * a file of them (age's `-R`), or of an identity file, whose recipients are derived.
 */
export async function resolveRecipients(values: readonly string[]): Promise<string[]> {
  const recipients: string[] = [];
  for (const value of values) {
    if (value.startsWith(RECIPIENT_PREFIX)) {
      recipients.push(value);
      continue;
    }
    const lines = keyLines(await readTextFile(value, "a recipients file"));
    if (lines.length === 0) throw new CliError(`${value} names no age recipient (age1…)`);
    for (const line of lines) {
      if (line.startsWith(RECIPIENT_PREFIX)) recipients.push(line);
      else if (line.startsWith(IDENTITY_PREFIX)) recipients.push(await recipientOf(line, value));
      else throw new CliError(`--encrypt-to ${value}: neither an age recipient (age1…) nor a file of them`);
    }
  }
  // Checked now, before any work, so a typo fails before an export starts rather than after.
  const check = new Encrypter();
  for (const recipient of recipients) {
    try {
      check.addRecipient(recipient);
    } catch (error) {
      throw new CliError(`--encrypt-to ${recipient}: not an age recipient (${(error as Error).message})`, undefined, {}, { cause: error });
    }
  }
  return recipients;
}

async function recipientOf(identity: string, source: string): Promise<string> {
  try {
    return await identityToRecipient(identity);
  } catch (error) {
    throw new CliError(`${source} holds an identity age cannot read: ${(error as Error).message}`, undefined, {}, { cause: error });
  }
}

/** A new identity as age-keygen writes it, and its recipient. */
export async function generateIdentityFile(options: { readonly postQuantum: boolean; readonly now: Date }): Promise<{ readonly text: string; readonly recipient: string }> {
  const identity = options.postQuantum ? await generateHybridIdentity() : await generateX25519Identity();
  const recipient = await identityToRecipient(identity);
  const text = `# created: ${options.now.toISOString().replace(/\.\d{3}Z$/, "Z")}\n# public key: ${recipient}\n${identity}\n`;
  return { text, recipient };
}

/** The recipients of the identities in an identity file (age-keygen -y). */
export async function recipientsOfIdentityFile(path: string): Promise<string[]> {
  const identities = await readIdentities(path);
  return Promise.all(identities.map((identity) => recipientOf(identity, path)));
}
