/**
 * Ends subscriptions whose client stopped reading (SUB-034).
 *
 * nice-grpc writes a server stream's next message only after the previous one drained, so a
 * client that stops reading leaves the subscription's generator suspended at a `yield`: it
 * never gets to see that its buffer overflowed, and the call, with what it buffers, stays
 * open until the client reads again. This grpc-js server interceptor watches the messages of
 * Subscribe calls: once one written message has waited `stallMs` without being taken by the
 * transport (HTTP/2 flow control holds it because the client does not read), it ends the call
 * with RESOURCE_EXHAUSTED / SUBSCRIBER_TOO_SLOW and cancels the handler, which releases the
 * subscription (its buffer and its hub listener). The status follows the messages already
 * written, so the client sees it once it reads again; resubscribing with the last cursor it
 * received continues without a gap (SUB-031).
 */
import { Metadata, ServerInterceptingCall, type ServerInterceptingCallInterface, type ServerInterceptor } from "@grpc/grpc-js";
import { Any, ErrorInfo } from "nice-grpc-error-details";
import { Status as RpcStatus } from "nice-grpc-error-details/lib/proto/google/rpc/status.js";
import { Status } from "nice-grpc-common";
import { ERROR_DOMAIN } from "../errors.js";

const SUBSCRIBE_PATH = "/continuity.v1.SubscriptionService/Subscribe";
const MESSAGE = "the subscriber stopped reading; resubscribe with the last cursor";

/** The interceptor; `stallMs` is how long a written message may wait for the client. */
export function createSubscriptionStallInterceptor(stallMs: number): ServerInterceptor {
  return (method, call) => (method.path === SUBSCRIBE_PATH ? new ServerInterceptingCall(guard(call, stallMs)) : new ServerInterceptingCall(call));
}

function guard(call: ServerInterceptingCallInterface, stallMs: number): ServerInterceptingCallInterface {
  let cancelHandler: (() => void) | undefined;
  let pending = 0;
  let timer: NodeJS.Timeout | undefined;
  let ended = false;
  const disarm = () => {
    clearTimeout(timer);
    timer = undefined;
  };
  const arm = () => {
    disarm();
    timer = setTimeout(stalled, stallMs);
    timer.unref();
  };
  function stalled() {
    timer = undefined;
    if (ended) return;
    ended = true;
    call.sendStatus({ code: Status.RESOURCE_EXHAUSTED, details: MESSAGE, metadata: tooSlowTrailer() });
    cancelHandler?.();
  }
  return {
    start(listener) {
      cancelHandler = () => listener.onCancel();
      call.start({
        onReceiveMetadata: (metadata) => listener.onReceiveMetadata(metadata),
        onReceiveMessage: (message) => listener.onReceiveMessage(message),
        onReceiveHalfClose: () => listener.onReceiveHalfClose(),
        onCancel: () => {
          ended = true;
          disarm();
          listener.onCancel();
        },
      });
    },
    sendMessage(message, callback) {
      if (ended) return;
      pending++;
      if (timer === undefined) arm();
      call.sendMessage(message, () => {
        pending--;
        // Progress: the next message still waiting gets a full period of its own.
        if (pending === 0) disarm();
        else arm();
        callback();
      });
    },
    sendStatus(status) {
      disarm();
      if (ended) return;
      ended = true;
      call.sendStatus(status);
    },
    sendMetadata: (metadata) => call.sendMetadata(metadata),
    startRead: () => call.startRead(),
    getPeer: () => call.getPeer(),
    getDeadline: () => call.getDeadline(),
    getHost: () => call.getHost(),
    getAuthContext: () => call.getAuthContext(),
    getConnectionInfo: () => call.getConnectionInfo(),
    getMetricsRecorder: () => call.getMetricsRecorder(),
  };
}

/** The trailer `protocolError(RESOURCE_EXHAUSTED, "SUBSCRIBER_TOO_SLOW")` would get. */
function tooSlowTrailer(): Metadata {
  const info = ErrorInfo.fromPartial({ reason: "SUBSCRIBER_TOO_SLOW", domain: ERROR_DOMAIN, metadata: {} });
  const status = RpcStatus.fromPartial({
    code: Status.RESOURCE_EXHAUSTED,
    message: MESSAGE,
    details: [Any.fromPartial({ typeUrl: `type.googleapis.com/${ErrorInfo.$type}`, value: ErrorInfo.encode(info).finish() })],
  });
  const metadata = new Metadata();
  metadata.set("grpc-status-details-bin", Buffer.from(RpcStatus.encode(status).finish()));
  return metadata;
}
