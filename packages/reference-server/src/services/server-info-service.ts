import { continuity } from "@continuity/sdk/gen";
import { SUPPORTED_PROTOCOL_VERSIONS } from "../auth/middleware.js";
import { CLIENT_OUTCOMES_RETAINED } from "../store/types.js";
import { DELIVERY_FORMS } from "./compact-delivery.js";
import type { ServiceDeps } from "./deps.js";

const v1 = continuity.v1;

/** The profiles this build implements end to end, in ServerInfo and in the profile gate. */
export const CLAIMED_PROFILES: readonly continuity.v1.Profile[] = [v1.Profile.PROFILE_CORE, v1.Profile.PROFILE_IDENTITY, v1.Profile.PROFILE_PORTABILITY];

/**
 * ServerInfoService: what this server speaks and enforces. Public (no token), so a client
 * can negotiate and size its batches before it authenticates. The profiles listed are the
 * ones this build implements end to end and lets the conformance suite check.
 */
export function createServerInfoService(deps: ServiceDeps): continuity.v1.ServerInfoServiceImplementation {
  const { limits } = deps;
  return {
    async getServerInfo() {
      return {
        protocolVersions: [...SUPPORTED_PROTOCOL_VERSIONS],
        profiles: [...CLAIMED_PROFILES],
        limits: {
          maxDeltaBytes: limits.maxDeltaBytes,
          maxBatchDeltas: limits.maxBatchDeltas,
          maxBatchBytes: limits.maxBatchBytes,
          maxResumePayloadBytes: limits.maxResumePayloadBytes,
          maxStreamsPerSubject: limits.maxStreamsPerSubject,
          maxChunkBytes: limits.maxChunkBytes,
          maxSnapshotBytes: BigInt(limits.maxSnapshotBytes),
          maxPageSize: limits.maxPageSize,
          maxCheckpointStreams: limits.maxCheckpointStreams,
          accessTokenSeconds: deps.tokens.accessTokenSeconds,
          clientOutcomesRetained: CLIENT_OUTCOMES_RETAINED,
        },
        assertionAudience: deps.tokens.audience,
        implementation: deps.implementation,
        epoch: deps.epoch,
        bundleSigningJwks: JSON.stringify({ keys: [deps.tokens.publicJwk] }),
        deliveryForms: [...DELIVERY_FORMS],
      };
    },
  };
}
