import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import * as grpc from "@grpc/grpc-js";
import type { Status } from "nice-grpc-common";
import { BadRequest, ErrorInfo, RichClientError, type ErrorDetails } from "nice-grpc-error-details";
import { ConformanceFailure } from "./expect.js";
import type { Dialer } from "./security.js";

/** What a raw call ended with. */
export interface RawOutcome {
  readonly code: grpc.status;
  readonly details: string;
  readonly response: Buffer | undefined;
}

/**
 * Sends arbitrary bytes as the request message of a unary method, bypassing protobuf
 * encoding, so that the suite can feed a server what no generated client would produce.
 */
export async function rawUnaryCall(server: Dialer, path: string, body: Buffer, token?: string, timeoutMs = 10_000): Promise<RawOutcome> {
  const client = new grpc.Client(server.address(), server.credentials(), {
    "grpc.max_send_message_length": -1,
    "grpc.max_receive_message_length": -1,
  });
  const metadata = new grpc.Metadata();
  if (token !== undefined) metadata.set("authorization", `Bearer ${token}`);
  try {
    return await new Promise<RawOutcome>((resolve) => {
      client.makeUnaryRequest(
        path,
        (value: Buffer) => value,
        (value: Buffer) => value,
        body,
        metadata,
        { deadline: Date.now() + timeoutMs },
        (error, response) => {
          if (error !== null) resolve({ code: error.code, details: error.details, response: undefined });
          else resolve({ code: grpc.status.OK, details: "", response });
        },
      );
    });
  } finally {
    client.close();
  }
}

/**
 * Asks grpc.health.v1.Health/Check for the server's overall health. The request is the empty
 * HealthCheckRequest; SERVING is status 1, encoded as field 1 varint 1 (bytes 08 01).
 */
export async function checkHealthServing(server: Dialer): Promise<void> {
  const outcome = await rawUnaryCall(server, "/grpc.health.v1.Health/Check", Buffer.alloc(0), undefined, 5_000);
  if (outcome.code !== grpc.status.OK) throw new ConformanceFailure(`health check answered ${grpc.status[outcome.code]} (${outcome.details}); the server must keep serving`);
  if (outcome.response === undefined || !outcome.response.equals(Buffer.from([0x08, 0x01]))) {
    throw new ConformanceFailure(`health check must report SERVING (08 01), got ${outcome.response?.toString("hex") ?? "nothing"}`);
  }
}

/** Protobuf wire helpers for hand-made messages. */
export const wire = {
  varint(value: number | bigint): Buffer {
    let n = BigInt(value);
    const bytes: number[] = [];
    do {
      let byte = Number(n & 0x7fn);
      n >>= 7n;
      if (n > 0n) byte |= 0x80;
      bytes.push(byte);
    } while (n > 0n);
    return Buffer.from(bytes);
  },
  tag(field: number, wireType: number): Buffer {
    return wire.varint((field << 3) | wireType);
  },
  bytesField(field: number, value: Buffer | string): Buffer {
    const bytes = typeof value === "string" ? Buffer.from(value, "utf8") : value;
    return Buffer.concat([wire.tag(field, 2), wire.varint(bytes.length), bytes]);
  },
  varintField(field: number, value: number | bigint): Buffer {
    return Buffer.concat([wire.tag(field, 0), wire.varint(value)]);
  },
};

/**
 * Turns a grpc-js error of a raw call into the RichClientError the error assertions check,
 * decoding google.rpc.Status from `grpc-status-details-bin` (fields: 1 code, 2 message,
 * 3 details as Any{1 type_url, 2 value}).
 */
export function richErrorOf(path: string, error: grpc.ServiceError): RichClientError {
  const extra: ErrorDetails[] = [];
  const raw = error.metadata?.get("grpc-status-details-bin")[0];
  if (raw instanceof Buffer) {
    const reader = new BinaryReader(raw);
    while (reader.pos < reader.len) {
      const [field, wireType] = reader.tag();
      if (field !== 3 || wireType !== WireType.LengthDelimited) {
        reader.skip(wireType);
        continue;
      }
      const any = new BinaryReader(reader.bytes());
      let typeUrl = "";
      let value: Uint8Array = new Uint8Array();
      while (any.pos < any.len) {
        const [anyField, anyWire] = any.tag();
        if (anyField === 1) typeUrl = any.string();
        else if (anyField === 2) value = any.bytes();
        else any.skip(anyWire);
      }
      if (typeUrl.endsWith("/google.rpc.ErrorInfo")) extra.push(ErrorInfo.decode(value));
      else if (typeUrl.endsWith("/google.rpc.BadRequest")) extra.push(BadRequest.decode(value));
    }
  }
  return new RichClientError(path, error.code as number as Status, error.details, extra);
}
