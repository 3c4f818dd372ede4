import { composeServerMiddleware, type CallContext, type ServerMiddleware } from "nice-grpc-common";
import { describe, expect, it } from "vitest";
import { createStreamingFastPath } from "./streaming-fast-path.js";

// The fast path must leave every middleware between `outer` and `inner` seeing the call as
// `yield*` would have shown it: its start, its outcome (value, error or return), in order.

type Handler = (request: string, context: CallContext) => AsyncGenerator<string, string | void, undefined>;

/** A middleware that records its start, catch and finally, and may map or retry an error. */
function recording(name: string, log: string[], options: { mapError?: (error: unknown) => unknown; retryOnce?: boolean } = {}): ServerMiddleware {
  return async function* middleware(call, context) {
    log.push(`${name} start`);
    let retried = false;
    try {
      for (;;) {
        try {
          return yield* call.next(call.request, context);
        } catch (error) {
          if (options.retryOnce !== true || retried) throw error;
          retried = true;
          log.push(`${name} retry`);
        }
      }
    } catch (error) {
      log.push(`${name} catch ${String(error)}`);
      throw options.mapError?.(error) ?? error;
    } finally {
      log.push(`${name} finally`);
    }
  };
}

function run(middlewares: ServerMiddleware[], handler: Handler, responseStream = true): AsyncGenerator<string, string | void, undefined> {
  const fastPath = createStreamingFastPath();
  const chain = [fastPath.outer, ...middlewares, fastPath.inner].reduce((outer, inner) => composeServerMiddleware(outer, inner));
  const method = { path: "/test.Service/Method", requestStream: false, responseStream, options: {} };
  return chain(
    { method, requestStream: false, request: "request", responseStream, next: handler as never } as never,
    {} as CallContext,
  ) as AsyncGenerator<string, string | void, undefined>;
}

async function drain(call: AsyncGenerator<string, string | void, undefined>): Promise<{ messages: string[]; value: unknown }> {
  const messages: string[] = [];
  for (;;) {
    const result = await call.next();
    if (result.done === true) return { messages, value: result.value };
    messages.push(result.value);
  }
}

describe("the streaming fast path", () => {
  it("delivers the handler's messages as they are, and the middlewares see its end after the last one", async () => {
    const log: string[] = [];
    const call = run([recording("a", log), recording("b", log)], async function* (request) {
      log.push(`handler ${request}`);
      yield "one";
      yield "two";
      log.push("handler end");
    });
    expect(await drain(call)).toEqual({ messages: ["one", "two"], value: undefined });
    expect(log).toEqual(["a start", "b start", "handler request", "handler end", "b finally", "a finally"]);
  });

  it("does not resume the middlewares per message", async () => {
    let seen = 0;
    const counting: ServerMiddleware = async function* (call, context) {
      for await (const message of call.next(call.request, context)) {
        seen++;
        yield message;
      }
    };
    const call = run([counting], async function* () {
      yield "one";
      yield "two";
      yield "three";
    });
    expect((await drain(call)).messages).toEqual(["one", "two", "three"]);
    // Only the start of the handler passed through it.
    expect(seen).toBe(1);
  });

  it("hands a handler's error to the middlewares' catch blocks from the inside out, and ends with what they throw", async () => {
    const log: string[] = [];
    const call = run([recording("a", log), recording("b", log, { mapError: (error) => new Error(`mapped ${String(error)}`) })], async function* () {
      yield "one";
      throw new Error("boom");
    });
    expect((await call.next()).value).toBe("one");
    await expect(call.next()).rejects.toThrow("mapped Error: boom");
    expect(log).toEqual(["a start", "b start", "b catch Error: boom", "b finally", "a catch Error: mapped Error: boom", "a finally"]);
  });

  it("ends the handler and then the middlewares, without their catch blocks, when the consumer returns", async () => {
    const log: string[] = [];
    const call = run([recording("a", log)], async function* () {
      try {
        yield "one";
        yield "two";
      } finally {
        log.push("handler finally");
      }
    });
    expect((await call.next()).value).toBe("one");
    expect(await call.return(undefined)).toEqual({ done: true, value: undefined });
    expect(log).toEqual(["a start", "handler finally", "a finally"]);
  });

  it("starts the handler again when a middleware calls next again after an error", async () => {
    const log: string[] = [];
    let attempts = 0;
    const call = run([recording("a", log, { retryOnce: true })], async function* () {
      attempts++;
      if (attempts === 1) throw new Error("held");
      yield "after retry";
    });
    expect(await drain(call)).toEqual({ messages: ["after retry"], value: undefined });
    expect(attempts).toBe(2);
    expect(log).toEqual(["a start", "a retry", "a finally"]);
  });

  it("passes the handler's return value to the middlewares, and leaves a unary call as it is", async () => {
    const log: string[] = [];
    const unary = run([recording("a", log)], async function* () {
      return "response";
    }, false);
    expect(await drain(unary)).toEqual({ messages: [], value: "response" });
    expect(log).toEqual(["a start", "a finally"]);
  });

  it("answers an error thrown before the handler starts, as the middleware throws it", async () => {
    const refusing: ServerMiddleware = async function* () {
      throw new Error("unauthenticated");
    };
    let started = false;
    const call = run([refusing], async function* () {
      started = true;
      yield "never";
    });
    await expect(call.next()).rejects.toThrow("unauthenticated");
    expect(started).toBe(false);
  });
});
