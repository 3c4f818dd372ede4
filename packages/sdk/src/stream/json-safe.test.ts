import { describe, expect, it } from "vitest";
import { Status } from "nice-grpc-common";
import { ContinuityError } from "../errors/continuity-error.js";
import type { StreamStatus } from "./stream-core.js";
import { toJsonSafe } from "./json-safe.js";

describe("toJsonSafe", () => {
  it("turns a status with bigint versions and a halt into JSON that round-trips", () => {
    const status: StreamStatus = {
      connected: false,
      pendingCount: 2,
      lastAcknowledgedVersion: 9_007_199_254_740_993n,
      confirmedVersion: 12n,
      headHash: "ab",
      halted: new ContinuityError({ code: Status.FAILED_PRECONDITION, reason: "SESSION_CHANGED", message: "other account", metadata: { a: "b" } }),
    };
    expect(() => JSON.stringify(status)).toThrow(TypeError);
    const safe = toJsonSafe(status);
    const text = JSON.stringify(safe);
    expect(JSON.parse(text)).toEqual({
      connected: false,
      pendingCount: 2,
      lastAcknowledgedVersion: "9007199254740993",
      confirmedVersion: "12",
      headHash: "ab",
      halted: { name: "ContinuityError", code: Status.FAILED_PRECONDITION, reason: "SESSION_CHANGED", message: "other account", metadata: { a: "b" } },
    });
    // Exact past 2^53, which a number could not hold.
    expect(BigInt(safe.lastAcknowledgedVersion!)).toBe(9_007_199_254_740_993n);
  });

  it("hex-encodes bytes, drops functions, keeps arrays and refuses cycles", () => {
    expect(toJsonSafe({ hash: new Uint8Array([0, 15, 255]), list: [1n, undefined, () => 1], on: () => undefined })).toEqual({
      hash: "000fff",
      list: ["1", null, null],
    });
    const cyclic: { self?: unknown } = {};
    cyclic.self = cyclic;
    expect(() => toJsonSafe(cyclic)).toThrow(TypeError);
    const shared = { n: 1n };
    expect(toJsonSafe({ a: shared, b: shared })).toEqual({ a: { n: "1" }, b: { n: "1" } });
  });
});
