/**
 * Renders protocol values for humans: bigints as decimal, bytes as hex, so that a trace or
 * a failure message shows exactly what crossed the wire without JSON choking on bigint.
 */
export function formatWireValue(value: unknown): string {
  return JSON.stringify(value, wireReplacer);
}

function wireReplacer(this: unknown, _key: string, value: unknown): unknown {
  if (typeof value === "bigint") return `${value.toString()}n`;
  if (value instanceof Uint8Array) return `0x${Buffer.from(value).toString("hex")}`;
  if (value !== null && typeof value === "object" && (value as { type?: unknown }).type === "Buffer") {
    const data = (value as { data?: unknown }).data;
    if (Array.isArray(data)) return `0x${Buffer.from(data as number[]).toString("hex")}`;
  }
  return value;
}

/** Shortens long renderings so one huge payload cannot drown a report. */
export function truncate(text: string, max = 2000): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more chars)`;
}
