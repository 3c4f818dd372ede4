import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, Metadata, ServerError, Status, type Server } from "nice-grpc";
import { ErrorInfo, errorDetailsServerMiddleware, RichServerError } from "nice-grpc-error-details";
import { continuity } from "@continuity/sdk/gen";
import { createClientPool } from "../src/harness/clients.js";
import { checkBytes, ConformanceFailure, expectError } from "../src/harness/expect.js";
import { createTraceLog } from "../src/harness/trace.js";

const v1 = continuity.v1;

// A server whose GetServerInfo fails in the way the `mode` header asks, so that each error
// assertion of the harness is shown to reject a malformed error, not only to accept good ones.
let server: Server;
let address: string;

function info(reason: string, domain = "continuity.v1", metadata: Record<string, string> = {}) {
  return ErrorInfo.fromPartial({ reason, domain, metadata });
}

beforeAll(async () => {
  server = createServer().use(errorDetailsServerMiddleware);
  server.add(v1.ServerInfoServiceDefinition, {
    async getServerInfo(_request, context) {
      const mode = context.metadata.get("mode");
      switch (mode) {
        case "good":
          throw new RichServerError(Status.ABORTED, "stale", [info("VERSION_CONFLICT", "continuity.v1", { headVersion: "2", headHash: "ab".repeat(32) })]);
        case "no-details":
          throw new ServerError(Status.ABORTED, "stale");
        case "wrong-domain":
          throw new RichServerError(Status.ABORTED, "stale", [info("VERSION_CONFLICT", "example.com", { headVersion: "2", headHash: "ab".repeat(32) })]);
        case "missing-metadata":
          throw new RichServerError(Status.ABORTED, "stale", [info("VERSION_CONFLICT")]);
        case "reason-with-wrong-code":
          throw new RichServerError(Status.ABORTED, "stale", [info("STREAM_NOT_FOUND")]);
        case "leaks-token":
          throw new RichServerError(Status.ABORTED, "bad token eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.sig", [info("VERSION_CONFLICT", "continuity.v1", { headVersion: "2", headHash: "ab".repeat(32) })]);
        case "status-mismatch": {
          // Status details that claim another code than the call's own.
          context.trailer.set("grpc-status-details-bin", Buffer.from([0x08, 0x05, 0x12, 0x01, 0x78]));
          throw new ServerError(Status.ABORTED, "stale");
        }
        default:
          throw new Error(`unknown mode ${String(mode)}`);
      }
    },
  });
  address = `127.0.0.1:${await server.listen("127.0.0.1:0")}`;
});

afterAll(async () => {
  await server.shutdown();
});

async function attempt(mode: string) {
  const pool = createClientPool(address, createTraceLog(), new AbortController().signal);
  try {
    const metadata = new Metadata();
    metadata.set("mode", mode);
    return await expectError(pool.clients().serverInfo.getServerInfo({}, { metadata }), { code: Status.ABORTED, reason: "VERSION_CONFLICT", metadata: { headVersion: "2" } }, mode);
  } finally {
    pool.close();
  }
}

describe("expectError", () => {
  it("accepts an error with the code, one ErrorInfo, the domain, the reason and its metadata", async () => {
    const checked = await attempt("good");
    expect(checked.info.reason).toBe("VERSION_CONFLICT");
  });

  it.each([
    ["no-details", /exactly one google.rpc.ErrorInfo, found 0/],
    ["wrong-domain", /ErrorInfo.domain must be "continuity.v1"/],
    ["missing-metadata", /metadata.headVersion must be "2"/],
    ["reason-with-wrong-code", /expected reason VERSION_CONFLICT, got STREAM_NOT_FOUND/],
    ["leaks-token", /must not contain a JWS/],
    ["status-mismatch", /grpc-status-details-bin says NOT_FOUND "x", but the call ended ABORTED "stale"/],
  ])("rejects an error with %s", async (mode, message) => {
    const outcome = attempt(mode);
    await expect(outcome).rejects.toThrow(ConformanceFailure);
    await expect(outcome).rejects.toThrow(message);
  });
});

describe("checkBytes", () => {
  it("accepts equal bytes and shows short ones whole", () => {
    expect(() => checkBytes(new Uint8Array([1, 2]), new Uint8Array([1, 2]), "same")).not.toThrow();
    expect(() => checkBytes(new Uint8Array([1, 3]), new Uint8Array([1, 2]), "short")).toThrow("short: expected 0102, got 0103");
    expect(() => checkBytes(undefined, new Uint8Array([1]), "missing")).toThrow("missing: expected 01, got nothing");
  });

  it("shows long byte strings by length and around their first difference, not whole", () => {
    const expected = new Uint8Array(1_500_000).fill(0x61);
    const actual = new Uint8Array(expected);
    actual[1_000_000] = 0x62;
    let message = "";
    try {
      checkBytes(actual, expected, "payload");
    } catch (error) {
      expect(error).toBeInstanceOf(ConformanceFailure);
      message = (error as Error).message;
    }
    expect(message.length).toBeLessThan(400);
    expect(message).toContain("first difference at byte 1000000");
    expect(message).toContain("1500000 bytes, …[999984] 6161");
    expect(message).toContain("62");
    let empty = "";
    try {
      checkBytes(new Uint8Array(0), expected, "payload");
    } catch (error) {
      empty = (error as Error).message;
    }
    expect(empty).toMatch(/^payload: expected 1500000 bytes, 6161[0-9a-f]*…, got no bytes \(first difference at byte 0\)$/);
  });
});
