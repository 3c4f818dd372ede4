import { open } from "node:fs/promises";
import { CliError, fileProblem } from "../errors.js";

/** A key, key set or identity file larger than this is not one. */
const MAX_TEXT_FILE_BYTES = 1024 * 1024;

/** Reads a small text file (a key, a JWKS, an identity file) whole, refusing one that is not small. */
export async function readTextFile(path: string, what: string): Promise<string> {
  try {
    const handle = await open(path, "r");
    try {
      const { size } = await handle.stat();
      if (size > MAX_TEXT_FILE_BYTES) throw new CliError(`${path} is ${size} bytes: too large to be ${what}`);
      return await handle.readFile("utf8");
    } finally {
      await handle.close();
    }
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw fileProblem("read", path, error);
  }
}

/** Reads a small JSON file, with one clear line when it is not JSON. */
export async function readJsonFile(path: string, what: string): Promise<unknown> {
  const text = await readTextFile(path, what);
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new CliError(`${path} is not ${what}: it is not JSON (${(error as Error).message})`, undefined, {}, { cause: error });
  }
}
