import type { CallContext, ServerMiddleware, ServerMiddlewareCall } from "nice-grpc-common";

/**
 * Lets a server-streaming call's messages skip the middleware layers between `outer` and
 * `inner`, without changing what those middlewares see of the call.
 *
 * Every nice-grpc middleware is an async generator that passes the handler's messages on with
 * `yield*`, so each message of a streamed response is handed through every layer: with seven
 * of them, under fan-out to a thousand subscribers, that delegation was about a third of the
 * server's time (README, "Benchmark"). None of this server's middlewares looks at a message:
 * each does its work before the call (authentication, gates, a request id) and after it
 * (logging, metrics, error mapping, error details). So the handler's messages go straight from
 * the handler to `outer`, and the middlewares between see only the call's beginning and its
 * outcome:
 *
 * - `inner`, the innermost middleware, does not start the handler. It yields one `Attempt`
 *   (the handler and the request and context it was to be called with) up through the
 *   middlewares, which pass it on like any message, and waits there.
 * - `outer`, the outermost middleware, recognises the `Attempt`, starts the handler itself
 *   and delivers its messages. When the handler ends, its outcome goes back to where the
 *   middlewares wait: its return value as the value `inner`'s `yield` receives, an error
 *   thrown into it, or a return completion (the consumer ended the call). Each middleware then
 *   unwinds exactly as it would have with `yield*` — its `catch` and `finally` run in order
 *   from the inside out — and the chain's own outcome is the call's.
 *
 * A middleware placed between them must not yield or transform messages of its own; one that
 * calls `next` again after an error (the subject gate retries a held write) makes a new
 * `Attempt`, which starts the handler again, as `yield*` would have. Unary and client-streaming
 * calls are passed through untouched: they have one response, so nothing repeats per message.
 *
 * Hand-written: nice-grpc has no way to run a middleware around a call but not its messages.
 */
export interface StreamingFastPath {
  readonly outer: ServerMiddleware;
  readonly inner: ServerMiddleware;
}

type Handler = (request: unknown, context: CallContext) => AsyncGenerator<unknown, unknown, undefined>;

/** Where the handler was to be started: yielded by `inner`, started by `outer`. */
class Attempt {
  constructor(
    readonly next: Handler,
    readonly request: unknown,
    readonly context: CallContext,
  ) {}
}

export function createStreamingFastPath(): StreamingFastPath {
  return {
    outer<Request, Response>(call: ServerMiddlewareCall<Request, Response>, context: CallContext) {
      const chain = call.next(call.request, context);
      if (!call.responseStream) return chain;
      return new FastPathCall(chain as AsyncGenerator<unknown, unknown, undefined>) as unknown as AsyncGenerator<Response, Response | void, undefined>;
    },
    inner<Request, Response>(call: ServerMiddlewareCall<Request, Response>, context: CallContext) {
      if (!call.responseStream) return call.next(call.request, context);
      return awaitOutcome(new Attempt(call.next as unknown as Handler, call.request, context)) as AsyncGenerator<Response, Response | void, undefined>;
    },
  };
}

/** Waits, inside the middlewares, for the outcome of the handler that `outer` runs. */
async function* awaitOutcome(attempt: Attempt): AsyncGenerator<unknown, unknown, unknown> {
  // What outer sends back is the handler's return value; a throw or return arrives as such.
  return yield attempt;
}

/**
 * The call as `outer` gives it to nice-grpc: the handler's messages, delivered directly, and
 * the middlewares' chain (`chain`) told only of the handler's start and end.
 */
class FastPathCall implements AsyncIterator<unknown, unknown, undefined> {
  /** The handler, while it runs. */
  private handler: AsyncGenerator<unknown, unknown, undefined> | undefined;

  constructor(private readonly chain: AsyncGenerator<unknown, unknown, undefined>) {}

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<unknown, unknown>> {
    if (this.handler === undefined) return this.chain.next().then(this.fromChain);
    return this.handler.next().then(this.fromHandler, this.handlerFailed);
  }

  throw(error: unknown): Promise<IteratorResult<unknown, unknown>> {
    if (this.handler === undefined) return this.chain.throw(error).then(this.fromChain);
    return this.handler.throw(error).then(this.fromHandler, this.handlerFailed);
  }

  return(value: unknown): Promise<IteratorResult<unknown, unknown>> {
    if (this.handler === undefined) return this.chain.return(value).then(this.fromChain);
    // As yield* does: the handler is asked to return first; if it does, so does the chain.
    return this.handler.return(value).then(this.handlerReturned, this.handlerFailed);
  }

  /** What the chain produced: a new attempt to start, a message of its own, or its end. */
  private readonly fromChain = (result: IteratorResult<unknown, unknown>): IteratorResult<unknown, unknown> | Promise<IteratorResult<unknown, unknown>> => {
    if (result.done === true || !(result.value instanceof Attempt)) return result;
    const { next, request, context } = result.value;
    this.handler = next(request, context);
    return this.next();
  };

  /** A message of the handler goes out as it is; its end goes back to the chain. */
  private readonly fromHandler = (result: IteratorResult<unknown, unknown>): IteratorResult<unknown, unknown> | Promise<IteratorResult<unknown, unknown>> => {
    if (result.done !== true) return result;
    this.handler = undefined;
    return this.chain.next(result.value as undefined).then(this.fromChain);
  };

  private readonly handlerReturned = (result: IteratorResult<unknown, unknown>): IteratorResult<unknown, unknown> | Promise<IteratorResult<unknown, unknown>> => {
    if (result.done !== true) return result;
    this.handler = undefined;
    return this.chain.return(result.value).then(this.fromChain);
  };

  private readonly handlerFailed = (error: unknown): Promise<IteratorResult<unknown, unknown>> => {
    this.handler = undefined;
    return this.chain.throw(error).then(this.fromChain);
  };
}
