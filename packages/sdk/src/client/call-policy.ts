/**
 * Which calls may be repeated without changing their effect. Reads are safe; AppendDeltas is
 * safe because the client sequence makes a repeat return the stored outcome (APPEND
 * exactly-once). Everything else — token exchange, creation, handoff resolution — could act
 * twice, so it is never retried automatically.
 */
const SAFE_TO_RETRY: ReadonlySet<string> = new Set([
  "/continuity.v1.ServerInfoService/GetServerInfo",
  "/continuity.v1.StreamService/GetStream",
  "/continuity.v1.StreamService/ListStreams",
  "/continuity.v1.StreamService/ListDeltas",
  "/continuity.v1.StreamService/GetSnapshot",
  "/continuity.v1.StreamService/AppendDeltas",
  "/continuity.v1.CheckpointService/GetCheckpoint",
  "/continuity.v1.CheckpointService/ListCheckpoints",
  "/continuity.v1.CheckpointService/GetHandoff",
  "/continuity.v1.SubjectService/GetSubject",
  "/continuity.v1.SubjectService/ListAccountLinks",
  "/continuity.v1.DeviceService/ListDevices",
  "/continuity.v1.ConsentService/ListGrants",
]);

/** Calls that stay open for as long as the caller wants and so get no default deadline. */
const LONG_LIVED: ReadonlySet<string> = new Set(["/continuity.v1.SubscriptionService/Subscribe"]);

/** Calls that authenticate by other means (an assertion) or need no token at all. */
const UNAUTHENTICATED: ReadonlySet<string> = new Set([
  "/continuity.v1.TokenService/ExchangeToken",
  "/continuity.v1.SubjectService/RedeemLinkCode",
  "/continuity.v1.ServerInfoService/GetServerInfo",
]);

/** True when repeating the call cannot change its effect. */
export function isSafeToRetry(path: string): boolean {
  return SAFE_TO_RETRY.has(path);
}

/** True for calls that must not get the client's default deadline. */
export function isLongLived(path: string): boolean {
  return LONG_LIVED.has(path);
}

/** True for calls that must not carry an access token. */
export function needsNoToken(path: string): boolean {
  return UNAUTHENTICATED.has(path);
}
