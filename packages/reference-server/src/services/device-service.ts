import { Status } from "nice-grpc-common";
import { z } from "zod";
import { continuity } from "@continuity/sdk/gen";
import type { AuthCallContextExt } from "../auth/context.js";
import { parseRequest as validateRequest } from "../validation/validate.js";
import { deviceName, isDeviceId, parseDeviceName, parseSubjectName, platformName } from "../auth/resource-names.js";
import { requireOwnSubject, requireScope } from "../auth/scopes.js";
import { subjectNotFound } from "../auth/wire-errors.js";
import { protocolError } from "../errors.js";
import type { DeviceRecord } from "../store/types.js";
import type { ServiceDeps } from "./deps.js";
import { listRequestSchema, pageSize } from "./paging.js";
import { IDENTITY_DEFAULT_PAGE_SIZE } from "./subject-service.js";
import { deviceOfOtherPlatform, deviceRevoked } from "./token-service.js";

type DeviceServiceImplementation = continuity.v1.DeviceServiceImplementation<AuthCallContextExt>;

const registerSchema = z.object({
  parent: z.string(),
  deviceId: z.string().refine(isDeviceId, "1 to 63 characters of [a-z0-9-], starting with a letter or digit"),
  displayName: z.string().max(100, "at most 100 characters"),
});


/** Wire form of a device. */
export function deviceMessage(device: DeviceRecord): continuity.v1.Device {
  return {
    name: deviceName(device.subjectId, device.id),
    displayName: device.displayName,
    platform: platformName(device.platformId),
    state: device.revokedAt === undefined ? continuity.v1.DeviceState.DEVICE_STATE_ACTIVE : continuity.v1.DeviceState.DEVICE_STATE_REVOKED,
    createTime: device.createdAt,
    revokeTime: device.revokedAt,
  };
}

function deviceNotFound(): Error {
  return protocolError(Status.NOT_FOUND, "DEVICE_NOT_FOUND", "device not found");
}

/**
 * DeviceService: a subject's installations. Revocation is the lever a person pulls when a
 * phone is lost, so it takes effect on the next call of any token of that device (the auth
 * middleware re-checks) and ends its subscriptions through the event log.
 */
export function createDeviceService(deps: ServiceDeps): DeviceServiceImplementation {
  return {
    async registerDevice(request, { auth }) {
      requireScope(auth, "identity.manage");
      const valid = validateRequest(registerSchema, request);
      const subjectId = parseSubjectName("parent", valid.parent);
      requireOwnSubject(auth, subjectId, "manage");
      const result = await deps.store.registerDevice({
        subjectId,
        deviceId: valid.deviceId,
        platformId: auth.platformId,
        displayName: valid.displayName === "" ? undefined : valid.displayName,
        now: deps.clock(),
      });
      if (result.kind === "revoked") throw deviceRevoked();
      if (result.kind === "other-platform") throw deviceOfOtherPlatform();
      if (result.kind === "subject-not-found") throw subjectNotFound();
      return { device: deviceMessage(result.device) };
    },

    async listDevices(request, { auth }) {
      requireScope(auth, "identity.manage");
      const valid = validateRequest(listRequestSchema, request);
      const subjectId = parseSubjectName("parent", valid.parent);
      requireOwnSubject(auth, subjectId, "manage");
      // Stryker disable next-line StringLiteral: the key only has to differ from other lists' keys, and ["", subject] still does
      const key = ["ListDevices", subjectId];
      const page = await deps.store.listDevices(subjectId, {
        after: deps.pageTokens.decode(key, valid.pageToken),
        limit: pageSize(valid.pageSize, IDENTITY_DEFAULT_PAGE_SIZE, deps.limits.maxPageSize),
      });
      return {
        devices: page.items.map(deviceMessage),
        nextPageToken: page.nextAfter === undefined ? "" : deps.pageTokens.encode(key, page.nextAfter),
      };
    },

    async revokeDevice(request, { auth }) {
      requireScope(auth, "identity.manage");
      const { subjectId, deviceId } = parseDeviceName("name", request.name);
      requireOwnSubject(auth, subjectId, "manage");
      const device = await deps.store.revokeDevice(subjectId, deviceId, deps.clock());
      if (device === undefined) throw deviceNotFound();
      deps.logger.info({ subject: subjectId, device: deviceId, platform: auth.platformId }, "device revoked");
      return { device: deviceMessage(device) };
    },
  };
}
