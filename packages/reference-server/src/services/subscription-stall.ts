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
import { Metadata, type ServerInterceptingCall, type ServerInterceptingCallInterface, type ServerInterceptor } from "@grpc/grpc-js";
import { Any, ErrorInfo } from "nice-grpc-error-details";
import { Status as RpcStatus } from "nice-grpc-error-details/lib/proto/google/rpc/status.js";
import { Status } from "nice-grpc-common";
import { ERROR_DOMAIN } from "../errors.js";

type Call = ServerInterceptingCallInterface;
/** grpc-js's InterceptingServerListener and PartialStatusObject, which it does not export. */
type InterceptingServerListener = Parameters<Call["start"]>[0];
type PartialStatusObject = Parameters<Call["sendStatus"]>[0];

const SUBSCRIBE_PATH = "/continuity.v1.SubscriptionService/Subscribe";
const MESSAGE = "the subscriber stopped reading; resubscribe with the last cursor";

/** The interceptor; `stallMs` is how long a written message may wait for the client. */
export function createSubscriptionStallInterceptor(stallMs: number): ServerInterceptor {
  // Other calls get no layer at all: a wrapper per unary call would cost every append.
  // grpc-js types an interceptor's result as its ServerInterceptingCall class, but chains
  // interceptors through the interface alone (starting from a call that is not that class),
  // so an object with the interface, or the call it was given, is what it runs.
  return (method, call) => (method.path === SUBSCRIBE_PATH ? new StallGuard(call, stallMs) : call) as ServerInterceptingCall;
}

/**
 * The call seen by the layers above (grpc-js's handler) and, as the listener of the call
 * below, the events they are sent. One object per subscription with its methods on the
 * prototype: an idle subscription is mostly what it allocates per call, and closures per
 * method (about two dozen with grpc-js's own ServerInterceptingCall) were a third of it.
 */
class StallGuard implements ServerInterceptingCallInterface, InterceptingServerListener {
  private listener: InterceptingServerListener | undefined;
  /** The callbacks of the messages written and not yet taken by the transport, oldest first. */
  private readonly waiting: (() => void)[] = [];
  /** When the oldest waiting message began its wait: when it was written, or the one before it was taken. */
  private progressAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private ended = false;
  /**
   * Made once per call rather than once per message: under fan-out every subscriber writes
   * every event, and a closure and a timer set and cleared per message were work per
   * subscriber and event. The timer is armed once and, when it fires, judges the wait from
   * `progressAt`, re-arming for what is left.
   */
  private readonly sent = (): void => {
    this.progressAt = Date.now();
    this.waiting.shift()?.();
  };

  constructor(
    private readonly call: ServerInterceptingCallInterface,
    private readonly stallMs: number,
  ) {}

  start(listener: InterceptingServerListener): void {
    this.listener = listener;
    this.call.start(this);
  }

  onReceiveMetadata(metadata: Metadata): void {
    this.listener!.onReceiveMetadata(metadata);
  }

  onReceiveMessage(message: unknown): void {
    this.listener!.onReceiveMessage(message);
  }

  onReceiveHalfClose(): void {
    this.listener!.onReceiveHalfClose();
  }

  onCancel(): void {
    // Stryker disable next-line BooleanLiteral: listener.onCancel below makes grpc-js's handler layer destroy its stream, so no message or status comes through here after it, and disarm stops the timer: nothing reads ended again
    this.ended = true;
    this.disarm();
    this.listener!.onCancel();
  }

  sendMessage(message: unknown, callback: () => void): void {
    if (this.ended) return;
    // Progress: a message waits from when it was written or the one before it was taken,
    // so the next message still waiting gets a full period of its own.
    if (this.waiting.length === 0) this.progressAt = Date.now();
    this.waiting.push(callback);
    if (this.timer === undefined) this.arm(this.stallMs);
    this.call.sendMessage(message, this.sent);
  }

  sendStatus(status: PartialStatusObject): void {
    this.disarm();
    if (this.ended) return;
    // Stryker disable next-line BooleanLiteral: the status is the handler's last call (its stream has ended) and disarm above stopped the timer: nothing reads ended again
    this.ended = true;
    this.call.sendStatus(status);
  }

  sendMetadata(metadata: Metadata): void {
    this.call.sendMetadata(metadata);
  }

  startRead(): void {
    this.call.startRead();
  }

  getPeer(): string {
    return this.call.getPeer();
  }

  getDeadline(): ReturnType<Call["getDeadline"]> {
    return this.call.getDeadline();
  }

  getHost(): string {
    return this.call.getHost();
  }

  getAuthContext(): ReturnType<Call["getAuthContext"]> {
    return this.call.getAuthContext();
  }

  getConnectionInfo(): ReturnType<Call["getConnectionInfo"]> {
    return this.call.getConnectionInfo();
  }

  getMetricsRecorder(): ReturnType<Call["getMetricsRecorder"]> {
    return this.call.getMetricsRecorder();
  }

  private arm(ms: number): void {
    this.timer = setTimeout(stalled, ms, this);
    this.timer.unref();
  }

  // Stryker disable next-line BlockStatement: every disarm ends the call (onCancel, sendStatus), so a timer left armed finds it ended when it fires; it only keeps the guard in memory up to stallMs longer
  private disarm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /**
   * The timer fired: when a written message has waited `stallMs`, the call ends with
   * SUBSCRIBER_TOO_SLOW and the handler is cancelled; otherwise the timer waits for what is
   * left of the oldest message's period, or stops when nothing waits.
   */
  stalled(): void {
    this.timer = undefined;
    if (this.ended || this.waiting.length === 0) return;
    const left = this.progressAt + this.stallMs - Date.now();
    if (left > 0) {
      this.arm(left);
      return;
    }
    // Stryker disable next-line BooleanLiteral: listener.onCancel below makes grpc-js's handler layer destroy its stream, so no message or status comes through here after this one and no timer is armed again: nothing reads ended again
    this.ended = true;
    this.call.sendStatus({ code: Status.RESOURCE_EXHAUSTED, details: MESSAGE, metadata: tooSlowTrailer() });
    this.listener?.onCancel();
  }
}

function stalled(guard: StallGuard): void {
  guard.stalled();
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
