import { v1, type Clients } from "../harness/clients.js";
import { emptyStream, ENCODING, POLICY } from "../harness/streams.js";

/** Resource names a probe aims at (usually another subject's, or never minted). */
export interface ProbeTargets {
  readonly subject: string;
  readonly stream: string;
  readonly checkpoint: string;
  readonly handoff: string;
  readonly device: string;
  readonly grant: string;
  readonly accountLink: string;
}

/** One authenticated RPC with a well-formed request naming `targets`. */
export interface Probe {
  readonly method: string;
  readonly profile: "core" | "identity";
  /** The scope the method needs; `any` = any valid token of the subject (GetSubject). */
  readonly scope: "state.read" | "state.write" | "identity.manage" | "any";
  /** Changes state when it wrongly succeeds; such probes run after the read-only ones. */
  readonly destructive: boolean;
  readonly call: (clients: Clients, targets: ProbeTargets) => Promise<unknown>;
}

async function drain(source: AsyncIterable<unknown>): Promise<unknown[]> {
  const items: unknown[] = [];
  for await (const item of source) {
    items.push(item);
    // A subscription never ends by itself; its first message is enough to judge the call.
    if (items.length >= 1 && (item as { event?: unknown }).event !== undefined) break;
  }
  return items;
}

async function* uploadOf(stream: string) {
  yield { part: { $case: "header" as const, value: { stream, streamUid: "", version: 0n, headHash: Buffer.alloc(32), encoding: ENCODING.opaque, sizeBytes: 1n, snapshotHash: Buffer.alloc(32) } } };
  yield { part: { $case: "data" as const, value: Buffer.from([1]) } };
}

const resume = { activityType: "org.example.probe", resource: "", position: "", fallbackUrl: "", attributes: {} };

/**
 * Every method that needs an access token, each with a request that would be valid for its
 * own subject. Authentication and isolation cases run all of them, so a method added to a
 * server without the auth middleware cannot slip through.
 */
export const AUTHENTICATED_PROBES: readonly Probe[] = [
  { method: "StreamService.GetStream", profile: "core", scope: "state.read", destructive: false, call: (c, t) => c.streams.getStream({ name: t.stream }) },
  { method: "StreamService.ListStreams", profile: "core", scope: "state.read", destructive: false, call: (c, t) => c.streams.listStreams({ parent: t.subject, pageSize: 0, pageToken: "", type: "" }) },
  { method: "StreamService.ListDeltas", profile: "core", scope: "state.read", destructive: false, call: (c, t) => c.streams.listDeltas({ stream: t.stream, afterVersion: 0n, pageSize: 0, pageToken: "" }) },
  { method: "StreamService.GetSnapshot", profile: "core", scope: "state.read", destructive: false, call: (c, t) => drain(c.streams.getSnapshot({ stream: t.stream })) },
  { method: "CheckpointService.GetCheckpoint", profile: "core", scope: "state.read", destructive: false, call: (c, t) => c.checkpoints.getCheckpoint({ name: t.checkpoint }) },
  { method: "CheckpointService.ListCheckpoints", profile: "core", scope: "state.read", destructive: false, call: (c, t) => c.checkpoints.listCheckpoints({ parent: t.subject, pageSize: 0, pageToken: "" }) },
  { method: "CheckpointService.GetHandoff", profile: "core", scope: "state.read", destructive: false, call: (c, t) => c.checkpoints.getHandoff({ name: t.handoff }) },
  { method: "SubscriptionService.Subscribe", profile: "core", scope: "state.read", destructive: false, call: (c, t) => drain(c.subscriptions.subscribe({ parent: t.subject, cursor: "", heartbeatSeconds: 0 })) },
  { method: "SubjectService.GetSubject", profile: "core", scope: "any", destructive: false, call: (c, t) => c.subjects.getSubject({ name: t.subject }) },
  { method: "SubjectService.ListAccountLinks", profile: "identity", scope: "identity.manage", destructive: false, call: (c, t) => c.subjects.listAccountLinks({ parent: t.subject, pageSize: 0, pageToken: "" }) },
  { method: "DeviceService.ListDevices", profile: "identity", scope: "identity.manage", destructive: false, call: (c, t) => c.devices.listDevices({ parent: t.subject, pageSize: 0, pageToken: "" }) },
  { method: "ConsentService.ListGrants", profile: "identity", scope: "identity.manage", destructive: false, call: (c, t) => c.consent.listGrants({ parent: t.subject, pageSize: 0, pageToken: "" }) },
  { method: "StreamService.CreateStream", profile: "core", scope: "state.write", destructive: true, call: (c, t) => c.streams.createStream({ parent: t.subject, streamId: "probe-stream", stream: { ...emptyStream(), type: "org.example.probe", encoding: ENCODING.mergePatch, conflictPolicy: POLICY.blind } }) },
  { method: "StreamService.AppendDeltas", profile: "core", scope: "state.write", destructive: true, call: (c, t) => c.streams.appendDeltas({ stream: t.stream, deltas: [{ payload: Buffer.from('{"probe":1}') }], clientSequence: 1n }) },
  { method: "StreamService.UploadSnapshot", profile: "core", scope: "state.write", destructive: true, call: (c, t) => c.streams.uploadSnapshot(uploadOf(t.stream)) },
  { method: "StreamService.CompactStream", profile: "core", scope: "state.write", destructive: true, call: (c, t) => c.streams.compactStream({ stream: t.stream, horizonVersion: 1n }) },
  { method: "CheckpointService.CreateCheckpoint", profile: "core", scope: "state.write", destructive: true, call: (c, t) => c.checkpoints.createCheckpoint({ parent: t.subject, checkpointId: "", streams: [{ stream: t.stream }], resume }) },
  { method: "CheckpointService.OfferHandoff", profile: "core", scope: "state.write", destructive: true, call: (c, t) => c.checkpoints.offerHandoff({ parent: t.subject, checkpoint: t.checkpoint, targetDevice: "", ttlSeconds: 0 }) },
  { method: "CheckpointService.AcceptHandoff", profile: "core", scope: "state.read", destructive: true, call: (c, t) => c.checkpoints.acceptHandoff({ name: t.handoff }) },
  { method: "CheckpointService.DeclineHandoff", profile: "core", scope: "state.read", destructive: true, call: (c, t) => c.checkpoints.declineHandoff({ name: t.handoff }) },
  { method: "CheckpointService.RestoreCheckpoint", profile: "core", scope: "state.write", destructive: true, call: (c, t) => c.checkpoints.restoreCheckpoint({ name: t.checkpoint }) },
  { method: "SubjectService.CreateLinkCode", profile: "identity", scope: "identity.manage", destructive: true, call: (c, t) => c.subjects.createLinkCode({ parent: t.subject }) },
  { method: "DeviceService.RegisterDevice", profile: "identity", scope: "identity.manage", destructive: true, call: (c, t) => c.devices.registerDevice({ parent: t.subject, deviceId: "probe-device", displayName: "probe" }) },
  { method: "ConsentService.CreateGrant", profile: "identity", scope: "identity.manage", destructive: true, call: (c, t) => c.consent.createGrant({ parent: t.subject, grant: { name: "", grantorPlatform: "", granteePlatform: "platforms/conformance-b", streamType: "*", access: v1.GrantAccess.GRANT_ACCESS_READ, createTime: undefined, revokeTime: undefined } }) },
  { method: "ConsentService.RevokeGrant", profile: "identity", scope: "identity.manage", destructive: true, call: (c, t) => c.consent.revokeGrant({ name: t.grant }) },
  { method: "DeviceService.RevokeDevice", profile: "identity", scope: "identity.manage", destructive: true, call: (c, t) => c.devices.revokeDevice({ name: t.device }) },
  { method: "SubjectService.DeleteAccountLink", profile: "identity", scope: "identity.manage", destructive: true, call: (c, t) => c.subjects.deleteAccountLink({ name: t.accountLink }) },
  { method: "CheckpointService.DeleteCheckpoint", profile: "core", scope: "state.write", destructive: true, call: (c, t) => c.checkpoints.deleteCheckpoint({ name: t.checkpoint }) },
  { method: "StreamService.DeleteStream", profile: "core", scope: "state.write", destructive: true, call: (c, t) => c.streams.deleteStream({ name: t.stream }) },
  { method: "SubjectService.DeleteSubject", profile: "identity", scope: "identity.manage", destructive: true, call: (c, t) => c.subjects.deleteSubject({ name: t.subject }) },
];

/** Names inside a subject id that was never minted (26 lowercase base32 characters). */
export function neverMintedTargets(): ProbeTargets {
  const id = Array.from({ length: 26 }, () => "abcdefghijklmnopqrstuvwxyz234567"[Math.floor(Math.random() * 32)]).join("");
  return namesIn(`subjects/${id}`, { stream: "ghost-stream", checkpoint: "ghost-checkpoint", handoff: "ghost-handoff", device: "ghost-device", grant: "ghost-grant", accountLink: "ghost-link" });
}

/** Resource names for the given ids inside `subject`. */
export function namesIn(subject: string, ids: { stream: string; checkpoint: string; handoff: string; device: string; grant: string; accountLink: string }): ProbeTargets {
  return {
    subject,
    stream: `${subject}/streams/${ids.stream}`,
    checkpoint: `${subject}/checkpoints/${ids.checkpoint}`,
    handoff: `${subject}/handoffs/${ids.handoff}`,
    device: `${subject}/devices/${ids.device}`,
    grant: `${subject}/grants/${ids.grant}`,
    accountLink: `${subject}/accountLinks/${ids.accountLink}`,
  };
}

/** The last segment of a resource name. */
export function lastSegment(name: string): string {
  return name.split("/").pop() ?? "";
}
