import type { AuthContext } from "../auth/context.js";
import type { GrantRecord, Store, StreamRecord, StreamVisibility } from "../store/types.js";

/**
 * What the calling platform may do with a subject's streams, decided by the rule of the
 * design note: a platform reads a stream it owns, or one an active grant from the owner
 * shares with it (same type or `*`); writing needs ownership or a READ_WRITE grant.
 */
export interface StreamAccess {
  readonly platformId: string;
  canRead(stream: Pick<StreamRecord, "ownerPlatformId" | "type">): boolean;
  canWrite(stream: Pick<StreamRecord, "ownerPlatformId" | "type">): boolean;
  /** The same rule as a store filter, for lists. */
  readonly visibility: StreamVisibility;
  /** The grants the decision used (held by the platform). */
  readonly grants: readonly GrantRecord[];
}

/** Builds the access decision of `platformId` from the subject's active grants. */
export function accessFromGrants(platformId: string, grants: readonly GrantRecord[]): StreamAccess {
  const held = grants.filter((g) => g.granteePlatformId === platformId);
  const covers = (g: GrantRecord, stream: Pick<StreamRecord, "ownerPlatformId" | "type">) =>
    g.grantorPlatformId === stream.ownerPlatformId && (g.streamType === "*" || g.streamType === stream.type);
  return {
    platformId,
    canRead: (stream) => stream.ownerPlatformId === platformId || held.some((g) => covers(g, stream)),
    canWrite: (stream) =>
      stream.ownerPlatformId === platformId || held.some((g) => g.access === "read-write" && covers(g, stream)),
    visibility: {
      platformId,
      shared: held.map((g) => ({ ownerPlatformId: g.grantorPlatformId, streamType: g.streamType })),
    },
    grants: held,
  };
}

/** Loads the caller's access to its subject's streams. */
export async function loadAccess(store: Store, auth: AuthContext): Promise<StreamAccess> {
  const grants = await store.listActiveGrants(auth.subjectId);
  return accessFromGrants(auth.platformId, grants);
}
