import { describe, expect, it } from "vitest";
import { continuity } from "@continuity/sdk/gen";
import { decodePart } from "../src/portability/bundle.js";

const v1 = continuity.v1;

// portability.md fixes the proto3 JSON form the records digest commits to; these are its
// rules, checked on a record decoded from real protobuf bytes.
describe("bundle record JSON", () => {
  it("follows the records-digest rules of portability.md", () => {
    const bytes = Buffer.from(
      v1.ExportSubjectResponse.encode({
        part: {
          $case: "record",
          value: {
            record: {
              $case: "delta",
              value: {
                stream: "",
                streamUid: "0b7c2a43-5f4e-4d59-9a55-7d3f3c1e2a10",
                version: 3n,
                encoding: v1.DeltaEncoding.DELTA_ENCODING_OPAQUE,
                payload: Buffer.from([0xfb, 0xff]),
                prevHash: Buffer.alloc(32, 1),
                hash: Buffer.alloc(32, 2),
                device: "subjects/s/devices/d",
                clientSequence: 0n,
                batchFirstVersion: 3n,
                batchSize: 1,
                commitTime: new Date("2026-11-22T10:00:00.000Z"),
              },
            },
          },
        },
      }).finish(),
    );
    expect(decodePart(bytes).json).toEqual({
      delta: {
        streamUid: "0b7c2a43-5f4e-4d59-9a55-7d3f3c1e2a10",
        version: "3",
        encoding: "DELTA_ENCODING_OPAQUE",
        payload: "+/8=",
        prevHash: Buffer.alloc(32, 1).toString("base64"),
        hash: Buffer.alloc(32, 2).toString("base64"),
        device: "subjects/s/devices/d",
        batchFirstVersion: "3",
        batchSize: 1,
        commitTime: "2026-11-22T10:00:00Z",
      },
    });
  });
});
