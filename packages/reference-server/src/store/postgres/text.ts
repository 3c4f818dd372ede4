import { toDevice, toLink, type DeviceRow, type LinkRow } from "../codec.js";
import type { AccountLinkRecord, DeviceRecord } from "../types.js";

/**
 * PostgreSQL text cannot hold U+0000, which SQLite and the protocol allow in the two
 * free-text fields that reach the store unchecked: a platform's account id (an assertion's
 * `sub`) and a device's display name. Those columns are stored with an escape that is
 * one-to-one (`\` → `\\`, U+0000 → `\0`), so equality lookups on the escaped form stay exact
 * and every value reads back as it was written.
 */
export function escapeText(value: string): string {
  return value.includes("\\") || value.includes("\u0000") ? value.replace(/\\/g, "\\\\").replace(/\u0000/g, "\\0") : value;
}

/** Inverse of {@link escapeText}. */
export function unescapeText(value: string): string {
  return value.includes("\\") ? value.replace(/\\(\\|0)/g, (_, c: string) => (c === "0" ? "\u0000" : "\\")) : value;
}

/** Whether a value can be compared at all: one holding U+0000 matches no stored text. */
export function comparable(value: string): boolean {
  return !value.includes("\u0000");
}

/** Maps an `account_links` row whose account id is stored escaped. */
export function toPgLink(row: LinkRow): AccountLinkRecord {
  return toLink({ ...row, account_id: unescapeText(row.account_id) });
}

/** Maps a `devices` row whose display name is stored escaped. */
export function toPgDevice(row: DeviceRow): DeviceRecord {
  return toDevice({ ...row, display_name: unescapeText(row.display_name) });
}
