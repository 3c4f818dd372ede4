import type { ServiceDefinition } from "@grpc/grpc-js";

const identity = (bytes: Buffer): Buffer => bytes;

/**
 * A raw-bytes gRPC service for the baseline: the cheapest work @grpc/grpc-js can do for a
 * unary call (echo), for a fan-out (publish → subscribers) and for a download of one stored
 * blob (put, then download). No protobuf, no middleware,
 * no storage — the floor the reference server's numbers are compared with.
 */
export const ECHO_SERVICE = {
  echo: {
    path: "/bench.Echo/Echo",
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
  publish: {
    path: "/bench.Echo/Publish",
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
  /** Stores the request as the blob `download` answers with (the floor of a resume). */
  put: {
    path: "/bench.Echo/Put",
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
  download: {
    path: "/bench.Echo/Download",
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
  subscribe: {
    path: "/bench.Echo/Subscribe",
    requestStream: false,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
} satisfies ServiceDefinition;
