/**
 * The `.cbundle` file form: each part (an ExportSubjectResponse in protobuf binary) prefixed
 * by its length as a u32 big-endian integer. Written here rather than taken from a
 * length-prefix library because the format is four bytes and a bound; what matters is that
 * a reader never holds more than one part and refuses a length it would not accept.
 */

/** Largest part a reader accepts by default: a snapshot record at the largest snapshot plus framing. */
export const DEFAULT_MAX_PART_BYTES = 80 * 1024 * 1024;

/** A framing problem in a bundle file. */
export class BundleFramingError extends Error {
  override readonly name = "BundleFramingError";
}

/** The four-byte length prefix of one part. */
export function framePrefix(partLength: number): Uint8Array {
  const prefix = new Uint8Array(4);
  new DataView(prefix.buffer).setUint32(0, partLength, false);
  return prefix;
}

/** One part with its length prefix. */
export function frame(part: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + part.length);
  out.set(framePrefix(part.length), 0);
  out.set(part, 4);
  return out;
}

/**
 * Splits a byte stream (a file read stream, stdin) into parts. Holds at most one part plus
 * one input chunk in memory; refuses a declared length above `maxPartBytes` before reading
 * it, and a stream that ends inside a part.
 */
export async function* readFrames(source: AsyncIterable<Uint8Array>, options: { readonly maxPartBytes?: number } = {}): AsyncGenerator<Uint8Array, void, undefined> {
  const maxPartBytes = options.maxPartBytes ?? DEFAULT_MAX_PART_BYTES;
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let need = -1; // bytes of the current part's body, -1 while reading a prefix
  let offset = 0; // bytes consumed of the stream, for messages
  let index = 0;

  const take = (n: number): Uint8Array => {
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const head = pending[0]!;
      const used = Math.min(head.length, n - filled);
      out.set(head.subarray(0, used), filled);
      filled += used;
      if (used === head.length) pending.shift();
      else pending[0] = head.subarray(used);
    }
    pendingBytes -= n;
    offset += n;
    return out;
  };

  for await (const chunk of source) {
    if (chunk.length === 0) continue;
    pending.push(chunk);
    pendingBytes += chunk.length;
    for (;;) {
      if (need < 0) {
        if (pendingBytes < 4) break;
        const prefix = take(4);
        need = new DataView(prefix.buffer).getUint32(0, false);
        if (need > maxPartBytes) throw new BundleFramingError(`part ${index} at byte ${offset - 4} declares ${need} bytes, more than the ${maxPartBytes} this reader accepts`);
      }
      if (pendingBytes < need) break;
      const part = take(need);
      need = -1;
      index += 1;
      yield part;
    }
  }
  if (need >= 0) throw new BundleFramingError(`the file ends inside part ${index}: ${pendingBytes} of its ${need} bytes are there`);
  if (pendingBytes > 0) throw new BundleFramingError(`the file ends inside the length prefix of part ${index} (${pendingBytes} stray bytes)`);
  pending = [];
}
