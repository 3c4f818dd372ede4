import { v1 } from "../harness/clients.js";
import type { Session } from "../harness/context.js";
import { defineCase } from "../harness/define-case.js";
import { checkEqual, expectError, Status } from "../harness/expect.js";
import { linkAccount } from "../harness/linking.js";

// Identity resource names (GEN-030): every field that holds a subject, device, account-link,
// grant or platform name refuses a value of the wrong shape as INVALID_FIELD naming that
// field, whether the value is empty or merely malformed, before anything is looked up.
// names.malformed-resource-names-refused does the same for the core names.

const invalid = (field: string) => ({ code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELD", fieldViolations: [field] }) as const;

/** Values that are not `subjects/{subject}`, built around the caller's own subject. */
function badSubjectNames(subject: string): string[] {
  return ["", "subjects/", "subjects", `${subject}/`, `/${subject}`, subject.replace("subjects/", "subject/"), subject.replace("subjects/", "subjects/UPPER-"), `${subject}/streams/a`, subject.replace("subjects/", "")];
}

/** Values that are not `subjects/{subject}/{collection}/{id}`, built around the caller's own subject. */
function badChildNames(subject: string, collection: string, existingId: string): string[] {
  return [
    "",
    `${subject}/${collection}/`,
    `${subject}/${collection}`,
    `${subject}/${collection}/${existingId}/`,
    `${subject}/${collection}/${existingId}/more`,
    `/${subject}/${collection}/${existingId}`,
    `${subject}/${collection === "grants" ? "devices" : "grants"}/${existingId}`,
    `${subject}/${collection.toUpperCase()}/${existingId}`,
    `${subject}/${collection}/UPPER`,
    `${subject}/${collection}/-dash`,
    `${subject}/${collection}/has space`,
    `subjects/UPPER/${collection}/${existingId}`,
    `subjects//${collection}/${existingId}`,
    `${collection}/${existingId}`,
  ];
}

const idOf = (name: string | undefined): string => name?.split("/").pop() ?? "";

export const NAME_CASES = [
  defineCase({
    id: "names.identity-names-refused",
    requirements: ["GEN-030", "ERR-004"],
    profile: "identity",
    async run(ctx) {
      const owner = await ctx.session();
      const other = await linkAccount(ctx, owner, ctx.platforms.b, "names");
      const subject = owner.subject;
      const { grant } = await owner.clients.consent.createGrant({ parent: subject, grant: { name: "", grantorPlatform: "", granteePlatform: `platforms/${other.platform.id}`, streamType: "*", access: v1.GrantAccess.GRANT_ACCESS_READ, createTime: undefined, revokeTime: undefined } });
      const { accountLinks } = await owner.clients.subjects.listAccountLinks({ parent: subject, pageSize: 0, pageToken: "" });
      const linkId = idOf(accountLinks[0]?.name);
      const grantOf = (granteePlatform: string) => ({ name: "", grantorPlatform: "", granteePlatform, streamType: "*", access: v1.GrantAccess.GRANT_ACCESS_READ, createTime: undefined, revokeTime: undefined });

      const parents: [string, (session: Session, parent: string) => Promise<unknown>][] = [
        ["CreateLinkCode", (s, parent) => s.clients.subjects.createLinkCode({ parent })],
        ["ListAccountLinks", (s, parent) => s.clients.subjects.listAccountLinks({ parent, pageSize: 0, pageToken: "" })],
        ["RegisterDevice", (s, parent) => s.clients.devices.registerDevice({ parent, deviceId: "names-device", displayName: "" })],
        ["ListDevices", (s, parent) => s.clients.devices.listDevices({ parent, pageSize: 0, pageToken: "" })],
        ["CreateGrant", (s, parent) => s.clients.consent.createGrant({ parent, grant: grantOf(`platforms/${other.platform.id}`) })],
        ["ListGrants", (s, parent) => s.clients.consent.listGrants({ parent, pageSize: 0, pageToken: "" })],
      ];
      for (const name of badSubjectNames(subject)) {
        await expectError(owner.clients.subjects.getSubject({ name }), invalid("name"), `GetSubject name "${name}"`);
        await expectError(owner.clients.subjects.deleteSubject({ name }), invalid("name"), `DeleteSubject name "${name}"`);
        for (const [method, call] of parents) await expectError(call(owner, name), invalid("parent"), `${method} parent "${name}"`);
      }
      for (const name of badChildNames(subject, "devices", owner.deviceId)) {
        await expectError(owner.clients.devices.revokeDevice({ name }), invalid("name"), `RevokeDevice name "${name}"`);
      }
      for (const name of badChildNames(subject, "accountLinks", linkId)) {
        await expectError(owner.clients.subjects.deleteAccountLink({ name }), invalid("name"), `DeleteAccountLink name "${name}"`);
      }
      for (const name of badChildNames(subject, "grants", idOf(grant?.name))) {
        await expectError(owner.clients.consent.revokeGrant({ name }), invalid("name"), `RevokeGrant name "${name}"`);
      }
      for (const platform of ["", "platforms/", "platforms", other.platform.id, `platform/${other.platform.id}`, `platforms/${other.platform.id}/`, `platforms/${other.platform.id.toUpperCase()}`, `platforms/${other.platform.id} `, `platforms/${"p".repeat(64)}`, `/platforms/${other.platform.id}`, `platforms/${other.platform.id}\n`, `platforms/${other.platform.id}\nplatforms/x`]) {
        await expectError(owner.clients.consent.createGrant({ parent: subject, grant: grantOf(platform) }), invalid("grant.grantee_platform"), `CreateGrant grantee_platform "${platform}"`);
      }
      // Nothing the refused calls named was touched: the subject, its device, link and grant stand.
      await owner.clients.subjects.getSubject({ name: subject });
      const { devices } = await owner.clients.devices.listDevices({ parent: subject, pageSize: 0, pageToken: "" });
      checkEqual(devices.find((d) => d.name === owner.device)?.state, v1.DeviceState.DEVICE_STATE_ACTIVE, "the device named by refused RevokeDevice calls is still active");
      const { grants } = await owner.clients.consent.listGrants({ parent: subject, pageSize: 0, pageToken: "" });
      checkEqual(grants.map((g) => [g.name, g.revokeTime === undefined]), [[grant?.name, true]], "the grant named by refused RevokeGrant calls is not revoked");
      const after = await owner.clients.subjects.listAccountLinks({ parent: subject, pageSize: 0, pageToken: "" });
      checkEqual(after.accountLinks.length, 2, "account links after refused DeleteAccountLink calls");
    },
  }),
];
