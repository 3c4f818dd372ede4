/**
 * Resource-name and id syntax of continuity.v1, in one place so that every service accepts
 * exactly the same names. Parsers return undefined on a bad name; the request schemas turn
 * that into an INVALID_FIELD violation for the right field.
 */

/** Stream and checkpoint ids: 1-63 of `[a-z0-9-]`, starting with a letter or digit, not ending with `-`. */
export const RESOURCE_ID = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** Device ids: 1-63 of `[a-z0-9-]`, starting with a letter or digit. */
export const DEVICE_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** Server-minted ids (subjects, handoffs, grants, links): conservative `[a-z0-9]` up to 64. */
export const MINTED_ID = /^[a-z0-9][a-z0-9-]{0,63}$/;
/** Stream types: reverse-DNS, at most 128 of `[A-Za-z0-9.-]` with at least one dot. */
export const STREAM_TYPE = /^(?=.{1,128}$)(?=[^.]*\.)[A-Za-z0-9.-]+$/;

const SUBJECT = /^subjects\/([a-z0-9][a-z0-9-]{0,63})$/;
const CHILD = /^subjects\/([a-z0-9][a-z0-9-]{0,63})\/(streams|checkpoints|handoffs|devices)\/([a-z0-9][a-z0-9-]{0,63})$/;

/** `subjects/{subject}` → the subject id. */
export function parseSubjectName(name: string): string | undefined {
  return SUBJECT.exec(name)?.[1];
}

/** The collections below a subject that core names refer to. */
export type Collection = "streams" | "checkpoints" | "handoffs" | "devices";

/** `subjects/{subject}/{collection}/{id}` → both ids, when the id has that collection's syntax. */
export function parseChildName(
  name: string,
  collection: Collection,
): { readonly subjectId: string; readonly id: string } | undefined {
  const match = CHILD.exec(name);
  if (match === null || match[2] !== collection) return undefined;
  const id = match[3]!;
  const ok =
    collection === "streams" || collection === "checkpoints"
      ? RESOURCE_ID.test(id)
      : collection === "devices"
        ? DEVICE_ID.test(id)
        : MINTED_ID.test(id);
  return ok ? { subjectId: match[1]!, id } : undefined;
}

/** `subjects/{s}` */
export const subjectName = (subjectId: string): string => `subjects/${subjectId}`;
/** `subjects/{s}/streams/{id}` */
export const streamName = (subjectId: string, id: string): string => `subjects/${subjectId}/streams/${id}`;
/** `subjects/{s}/checkpoints/{id}` */
export const checkpointName = (subjectId: string, id: string): string => `subjects/${subjectId}/checkpoints/${id}`;
/** `subjects/{s}/handoffs/{id}` */
export const handoffName = (subjectId: string, id: string): string => `subjects/${subjectId}/handoffs/${id}`;
/** `subjects/{s}/devices/{id}` */
export const deviceName = (subjectId: string, id: string): string => `subjects/${subjectId}/devices/${id}`;
/** `subjects/{s}/grants/{id}` */
export const grantName = (subjectId: string, id: string): string => `subjects/${subjectId}/grants/${id}`;
/** `platforms/{p}` */
export const platformName = (platformId: string): string => `platforms/${platformId}`;
