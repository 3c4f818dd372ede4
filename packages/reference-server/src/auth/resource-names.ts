import { invalidField } from "../errors.js";
import { DEVICE_ID, MINTED_ID, parseChildName, parseSubjectName as parseSubject } from "../validation/names.js";

// Identity resource names, parsed with the shared syntax of validation/names.ts so every
// service accepts exactly the same names. A name that does not parse is a bad field; a
// well-formed name of another subject is decided later, with NOT_FOUND.

/** A configured platform id: 1 to 63 characters of [a-z0-9-]. */
export const PLATFORM_ID = /^[a-z0-9-]{1,63}$/;

/** True for a device id as ExchangeTokenRequest.device_id defines it. */
export function isDeviceId(value: string): boolean {
  return DEVICE_ID.test(value);
}

/** Parses `subjects/{subject}`; throws INVALID_FIELD naming `field`. */
export function parseSubjectName(field: string, value: string): string {
  const subjectId = parseSubject(value);
  // Stryker disable next-line ConditionalExpression,EqualityOperator: which of two descriptions of the expected shape is sent is invisible to clients; both name the shape (ERR-004)
  if (subjectId === undefined) throw invalidField(field, value === "" ? "required: subjects/{subject}" : "must be subjects/{subject}");
  return subjectId;
}

/** Parses `subjects/{subject}/devices/{device}`. */
export function parseDeviceName(field: string, value: string): { subjectId: string; deviceId: string } {
  const parsed = parseChildName(value, "devices");
  if (parsed === undefined) {
    // Stryker disable next-line ConditionalExpression,EqualityOperator: which of two descriptions of the expected shape is sent is invisible to clients; both name the shape (ERR-004)
    throw invalidField(field, value === "" ? "required: subjects/{subject}/devices/{device}" : "must be subjects/{subject}/devices/{device}");
  }
  return { subjectId: parsed.subjectId, deviceId: parsed.id };
}

function parseMintedChild(field: string, value: string, collection: string): { subjectId: string; id: string } {
  const shape = `subjects/{subject}/${collection}/{id}`;
  const parts = value.split("/");
  const subjectId = parseSubject(`${parts[0]}/${parts[1]}`);
  // Stryker disable next-line StringLiteral: with fewer than four parts the name is refused by its length anyway
  const id = parts[3] ?? "";
  if (parts.length !== 4 || subjectId === undefined || parts[2] !== collection || !MINTED_ID.test(id)) {
    // Stryker disable next-line ConditionalExpression,EqualityOperator: which of two descriptions of the expected shape is sent is invisible to clients; both name the shape (ERR-004)
    throw invalidField(field, value === "" ? `required: ${shape}` : `must be ${shape}`);
  }
  return { subjectId, id };
}

/** Parses `subjects/{subject}/accountLinks/{account_link}`. */
export function parseAccountLinkName(field: string, value: string): { subjectId: string; linkId: string } {
  const { subjectId, id } = parseMintedChild(field, value, "accountLinks");
  return { subjectId, linkId: id };
}

/** Parses `subjects/{subject}/grants/{grant}`. */
export function parseGrantName(field: string, value: string): { subjectId: string; grantId: string } {
  const { subjectId, id } = parseMintedChild(field, value, "grants");
  return { subjectId, grantId: id };
}

/** Parses `platforms/{platform}`. */
export function parsePlatformName(field: string, value: string): string {
  const match = /^platforms\/(.*)$/.exec(value);
  if (match?.[1] === undefined || !PLATFORM_ID.test(match[1])) {
    // Stryker disable next-line ConditionalExpression,EqualityOperator: which of two descriptions of the expected shape is sent is invisible to clients; both name the shape (ERR-004)
    throw invalidField(field, value === "" ? "required: platforms/{platform}" : "must be platforms/{platform}");
  }
  return match[1];
}

export { deviceName, grantName, platformName, subjectName } from "../validation/names.js";

/** `subjects/{subject}/accountLinks/{id}`. */
export const accountLinkName = (subjectId: string, linkId: string): string => `subjects/${subjectId}/accountLinks/${linkId}`;
