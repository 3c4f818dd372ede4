import { BinaryReader, BinaryWriter } from "@bufbuild/protobuf/wire";
import type { Server } from "nice-grpc";
import type { CallContext } from "nice-grpc-common";
import { HealthDefinition } from "nice-grpc-server-health";
import { ServerError, Status } from "nice-grpc-common";

// grpc.health.v1.HealthCheckResponse.ServingStatus; the package does not re-export the enum.
const SERVING = 1;
const NOT_SERVING = 2;
const SERVICE_UNKNOWN = 3;
type ServingStatus = typeof SERVING | typeof NOT_SERVING | typeof SERVICE_UNKNOWN;

/** `grpc.health.v1.HealthListRequest`: no fields. */
export type HealthListRequest = Record<string, never>;

/** `grpc.health.v1.HealthCheckResponse`, as List carries it. */
export interface HealthStatus {
  readonly status: number;
}

/** `grpc.health.v1.HealthListResponse`: the status of every service the server knows. */
export interface HealthListResponse {
  readonly statuses: Readonly<Record<string, HealthStatus>>;
}

const HealthListRequestType = {
  encode: (_message: HealthListRequest, writer: BinaryWriter = new BinaryWriter()) => writer,
  decode(input: Uint8Array): HealthListRequest {
    // No fields; unknown ones are skipped, as proto3 parsers do.
    const reader = new BinaryReader(input);
    while (reader.pos < reader.len) reader.skip(reader.tag()[1]);
    return {};
  },
  fromPartial: (_object: unknown): HealthListRequest => ({}),
};

function decodeStatus(input: Uint8Array): number {
  const reader = new BinaryReader(input);
  let status = 0;
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1) status = reader.int32();
    else reader.skip(wireType);
  }
  return status;
}

const HealthListResponseType = {
  encode(message: HealthListResponse, writer: BinaryWriter = new BinaryWriter()): BinaryWriter {
    // map<string, HealthCheckResponse> statuses = 1: one length-delimited entry per key, each
    // holding key = 1 and value = 2; HealthCheckResponse is `ServingStatus status = 1`.
    for (const [service, response] of Object.entries(message.statuses)) {
      writer.uint32(10).fork().uint32(10).string(service);
      writer.uint32(18).fork();
      if (response.status !== 0) writer.uint32(8).int32(response.status);
      writer.join().join();
    }
    return writer;
  },
  decode(input: Uint8Array): HealthListResponse {
    const reader = new BinaryReader(input);
    const statuses: Record<string, HealthStatus> = {};
    while (reader.pos < reader.len) {
      const [field, wireType] = reader.tag();
      if (field !== 1) {
        reader.skip(wireType);
        continue;
      }
      const entry = new BinaryReader(reader.bytes());
      let service = "";
      let status = 0;
      while (entry.pos < entry.len) {
        const [entryField, entryWireType] = entry.tag();
        if (entryField === 1) service = entry.string();
        else if (entryField === 2) status = decodeStatus(entry.bytes());
        else entry.skip(entryWireType);
      }
      statuses[service] = { status };
    }
    return { statuses };
  },
  fromPartial: (object: Partial<HealthListResponse>): HealthListResponse => ({ statuses: { ...object.statuses } }),
};

/**
 * grpc.health.v1.Health with `List` (added to health.proto after nice-grpc-server-health's copy
 * was generated). Reflection describes the current health.proto, so a client that finds
 * `List` there can call it.
 */
export const HealthServiceDefinition = {
  ...HealthDefinition,
  methods: {
    ...HealthDefinition.methods,
    list: {
      name: "List",
      requestType: HealthListRequestType,
      requestStream: false,
      responseType: HealthListResponseType,
      responseStream: false,
      options: {},
    },
  },
} as const;

/** Health of the server as a whole, as grpc.health.v1 reports it for every service name it knows. */
export interface HealthControl {
  /** The store is open and calls are served: report SERVING. */
  setServing(): void;
  /**
   * Draining: report NOT_SERVING so load balancers and probes move traffic away, and end
   * every Watch stream after telling it — an endless Watch would otherwise hold shutdown.
   */
  setShuttingDown(): void;
  /** What Check answers right now. */
  isServing(): boolean;
}

/**
 * Adds grpc.health.v1.Health to `server`, answering for the overall server (`""`) and each
 * name in `serviceNames`; starts NOT_SERVING until {@link HealthControl.setServing}. Its own
 * small implementation rather than nice-grpc-server-health's, so that shutdown can end
 * Watch streams.
 */
export function addHealthService<Ext extends object>(server: Server<Ext>, serviceNames: readonly string[]): HealthControl {
  const known = new Set(["", ...serviceNames]);
  let serving = false;
  let shuttingDown = false;
  const waiters = new Set<() => void>();
  const changed = () => {
    for (const wake of [...waiters]) wake();
  };
  const statusOf = (service: string): ServingStatus =>
    !known.has(service)
      ? SERVICE_UNKNOWN
      : serving
        ? SERVING
        : NOT_SERVING;

  const nextChange = (signal: AbortSignal) =>
    new Promise<void>((resolve) => {
      const wake = () => {
        waiters.delete(wake);
        signal.removeEventListener("abort", wake);
        resolve();
      };
      waiters.add(wake);
      signal.addEventListener("abort", wake);
    });

  server.add(HealthServiceDefinition, {
    async check(request, _context: CallContext) {
      if (!known.has(request.service)) throw new ServerError(Status.NOT_FOUND, `unknown service ${request.service}`);
      return { status: statusOf(request.service) };
    },
    async *watch(request, context: CallContext) {
      let last: ServingStatus | undefined;
      while (!context.signal.aborted) {
        const status = statusOf(request.service);
        if (status !== last) {
          yield { status };
          last = status;
        }
        if (shuttingDown) return;
        await nextChange(context.signal);
      }
    },
    async list(_request, _context: CallContext): Promise<HealthListResponse> {
      // A handful of names, so no paging; health.proto suggests RESOURCE_EXHAUSTED only past 100.
      return { statuses: Object.fromEntries([...known].map((service) => [service, { status: statusOf(service) }])) };
    },
  });

  return {
    setServing() {
      if (shuttingDown) return;
      serving = true;
      changed();
    },
    setShuttingDown() {
      serving = false;
      shuttingDown = true;
      changed();
    },
    isServing: () => serving,
  };
}
