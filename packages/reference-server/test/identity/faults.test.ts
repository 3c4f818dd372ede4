import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configureFaults } from "../../src/testing/faults.js";
import { failure, startIdentityHarness, type IdentityHarness } from "./harness.js";
import { continuity } from "@continuity/sdk/gen";

// Each identity fault must break exactly the guarantee it names, at the real code point;
// otherwise the conformance suite's "catches the mutant" evidence would prove nothing. The
// healthy behaviour of each point is asserted in identity.test.ts; here the same calls
// must succeed. Faults are process-global, and vitest runs each test file in its own worker.

const v1 = continuity.v1;
let h: IdentityHarness;

beforeAll(async () => {
  h = await startIdentityHarness();
});

afterAll(async () => {
  configureFaults([], {});
  await h.close();
});

function withFault(name: string) {
  expect(configureFaults([name], { CONTINUITY_ALLOW_TEST_FAULTS: "1" })).toEqual([name]);
}

describe("identity faults", () => {
  it("are inert without CONTINUITY_ALLOW_TEST_FAULTS=1", async () => {
    expect(configureFaults(["scope-widening"], {})).toEqual([]);
    const refused = await failure(h.exchange(h.platforms.readOnly, "inert", { scope: "state.write" }));
    expect(refused.reason).toBe("SCOPE_NOT_ALLOWED");
  });

  it("scope-widening grants scopes beyond the platform's configuration", async () => {
    withFault("scope-widening");
    const widened = await h.exchange(h.platforms.readOnly, "widen", { scope: "state.read state.write" });
    expect(widened.scope).toBe("state.read state.write");
  });

  it("expired-assertion-accepted exchanges an expired assertion", async () => {
    withFault("expired-assertion-accepted");
    const assertion = await h.platforms.a.assertion("late", { iatOffset: -1000, lifetime: 60 });
    const exchanged = await h.clients.token.exchangeToken({
      grantType: "urn:ietf:params:oauth:grant-type:token-exchange",
      subjectTokenType: "urn:ietf:params:oauth:token-type:jwt",
      subjectToken: assertion,
      scope: "",
      deviceId: "",
      deviceDisplayName: "",
    });
    expect(exchanged.subject).toMatch(/^subjects\//);
  });

  it("assertion-typ-unchecked accepts an assertion without the explicit typ", async () => {
    withFault("assertion-typ-unchecked");
    const assertion = await h.platforms.a.assertion("untyped", { header: { typ: "JWT" } });
    await expect(
      h.clients.token.exchangeToken({
        grantType: "urn:ietf:params:oauth:grant-type:token-exchange",
        subjectTokenType: "urn:ietf:params:oauth:token-type:jwt",
        subjectToken: assertion,
        scope: "",
        deviceId: "",
        deviceDisplayName: "",
      }),
    ).resolves.toBeDefined();
  });

  it("device-revocation-ignored keeps a revoked device's token working", async () => {
    configureFaults([], {});
    const phone = await h.exchange(h.platforms.a, "revoked-user", { deviceId: "phone" });
    const tv = await h.exchange(h.platforms.a, "revoked-user", { deviceId: "tv" });
    await h.as(phone.accessToken).device.revokeDevice({ name: `${phone.subject}/devices/tv` });
    withFault("device-revocation-ignored");
    await expect(h.as(tv.accessToken).subject.getSubject({ name: tv.subject })).resolves.toBeDefined();
  });

  it("cross-subject-read lets a token read another subject's streams", async () => {
    configureFaults([], {});
    const victim = await h.exchange(h.platforms.a, "victim");
    await h.as(victim.accessToken).stream.createStream({
      parent: victim.subject,
      streamId: "secret",
      stream: {
        type: "org.example.secret",
        encoding: v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH,
        conflictPolicy: v1.ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND,
      },
    });
    const attacker = await h.exchange(h.platforms.a, "attacker");
    withFault("cross-subject-read");
    const stolen = await h.as(attacker.accessToken).stream.getStream({ name: `${victim.subject}/streams/secret` });
    expect(stolen.stream?.type).toBe("org.example.secret");
    // Writes stay isolated: the fault breaks reads only.
    expect(await failure(h.as(attacker.accessToken).subject.deleteSubject({ name: victim.subject }))).toMatchObject({
      reason: "SUBJECT_NOT_FOUND",
    });
  });
});
