import { Status } from "nice-grpc-common";
import type { continuity } from "@continuity/sdk/gen";
import type { AuthCallContextExt } from "../auth/context.js";
import { protocolError } from "../errors.js";
import type { ServiceDeps } from "./deps.js";

type PortabilityServiceImplementation = continuity.v1.PortabilityServiceImplementation<AuthCallContextExt>;

function notClaimed(): Error {
  return protocolError(
    Status.UNIMPLEMENTED,
    "PROFILE_NOT_SUPPORTED",
    "this server does not claim the portability profile",
    { profile: "PROFILE_PORTABILITY" },
  );
}

/**
 * PortabilityService as a server that does not claim the `portability` profile answers it:
 * every method UNIMPLEMENTED / PROFILE_NOT_SUPPORTED, so clients learn it from a typed
 * reason rather than a bare UNIMPLEMENTED they cannot tell from a missing service.
 * Registered anyway so the answer carries that ErrorInfo.
 */
export function createPortabilityService(_deps: ServiceDeps): PortabilityServiceImplementation {
  return {
    // eslint-disable-next-line require-yield
    async *exportSubject() {
      throw notClaimed();
    },
    async importBundle(requests) {
      // Do not read the stream: the answer does not depend on it.
      void requests;
      throw notClaimed();
    },
    async createMigration() {
      throw notClaimed();
    },
    async getMigration() {
      throw notClaimed();
    },
  };
}
