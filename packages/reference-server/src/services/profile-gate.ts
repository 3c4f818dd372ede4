import { continuity } from "@continuity/sdk/gen";
import type { ServerMiddleware } from "nice-grpc-common";
import { Status } from "nice-grpc-common";
import { protocolError } from "../errors.js";

const v1 = continuity.v1;

/** Services that belong to a profile other than `core`, by gRPC service path prefix. */
const SERVICE_PROFILES: ReadonlyMap<string, continuity.v1.Profile> = new Map([
  [`/${v1.PortabilityServiceDefinition.fullName}/`, v1.Profile.PROFILE_PORTABILITY],
]);

/**
 * GEN-003: a method of a profile the server does not claim answers UNIMPLEMENTED /
 * PROFILE_NOT_SUPPORTED (metadata `profile`: the enum value name) before anything else —
 * authentication, scope or fields — so a client learns what the server offers from one
 * typed answer, whoever asks.
 */
export function createProfileGate(claimed: readonly continuity.v1.Profile[]): ServerMiddleware {
  return async function* profileGate(call, context) {
    for (const [prefix, profile] of SERVICE_PROFILES) {
      if (call.method.path.startsWith(prefix) && !claimed.includes(profile)) {
        const name = v1.profileToJSON(profile);
        throw protocolError(Status.UNIMPLEMENTED, "PROFILE_NOT_SUPPORTED", `this server does not claim ${name}`, { profile: name });
      }
    }
    return yield* call.next(call.request, context);
  };
}
