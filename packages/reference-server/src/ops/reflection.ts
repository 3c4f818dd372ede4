import { readFileSync } from "node:fs";
import type { Server } from "nice-grpc";
import { ServerReflection, ServerReflectionService } from "nice-grpc-server-reflection";

/** The committed FileDescriptorSet of continuity.v1 (regenerated with the protos). */
export const DESCRIPTOR_SET_URL = new URL("../gen/continuity-v1.binpb", import.meta.url);

/**
 * Adds grpc.reflection.v1 so `grpcurl` and `buf curl` can list and call the services
 * without a copy of the protos. Only the names given are exposed; pass the Continuity
 * services (and health, which clients like grpcurl describe too if its descriptor is known).
 */
export function addReflection<Ext extends object>(server: Server<Ext>, serviceNames: readonly string[]): void {
  const descriptorSet = new Uint8Array(readFileSync(DESCRIPTOR_SET_URL));
  server.add(ServerReflectionService, ServerReflection(descriptorSet, serviceNames));
}
