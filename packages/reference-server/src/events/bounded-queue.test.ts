import { describe, expect, it } from "vitest";
import { createBoundedQueue } from "./bounded-queue.js";

describe("createBoundedQueue", () => {
  it("hands items out in order and waits for the next one", async () => {
    const queue = createBoundedQueue<number>(10);
    const signal = new AbortController().signal;
    queue.push(1);
    expect(await queue.take(signal, 1000)).toBe(1);
    const later = queue.take(signal, 1000);
    queue.push(2);
    expect(await later).toBe(2);
    expect(await queue.take(signal, 10)).toBe("timeout");
  });

  it("overflows on count or weight and refuses everything after", () => {
    const byCount = createBoundedQueue<number>(2);
    expect([byCount.push(1), byCount.push(2), byCount.push(3)]).toEqual([true, true, false]);
    expect(byCount.overflowed).toBe(true);
    const byWeight = createBoundedQueue<number>(100, { maxWeight: 10, weigh: (n) => n });
    expect([byWeight.push(6), byWeight.push(5), byWeight.push(1)]).toEqual([true, false, false]);
    expect(byWeight.overflowed).toBe(true);
  });

  it("frees weight as items are taken", async () => {
    const queue = createBoundedQueue<number>(100, { maxWeight: 10, weigh: (n) => n });
    const signal = new AbortController().signal;
    queue.push(8);
    await queue.take(signal, 10);
    expect(queue.push(8)).toBe(true);
  });

  it("rejects a waiting take when its signal aborts", async () => {
    const queue = createBoundedQueue<number>(10);
    const controller = new AbortController();
    const waiting = queue.take(controller.signal, 60_000);
    controller.abort();
    await expect(waiting).rejects.toMatchObject({ name: "AbortError" });
  });

  it("times each take from its own start, whatever earlier takes armed", async () => {
    const queue = createBoundedQueue<number>(10);
    const signal = new AbortController().signal;
    // A long wait woken early leaves its timer armed; a short take after it must not wait for that timer.
    const long = queue.take(signal, 60_000);
    queue.push(1);
    expect(await long).toBe(1);
    let started = Date.now();
    expect(await queue.take(signal, 30)).toBe("timeout");
    expect(Date.now() - started).toBeLessThan(1000);
    // A short wait woken early, then a longer take: it must not time out at the short deadline.
    const short = queue.take(signal, 20);
    queue.push(2);
    expect(await short).toBe(2);
    started = Date.now();
    const longer = queue.take(signal, 200);
    setTimeout(() => queue.push(3), 80);
    expect(await longer).toBe(3);
    expect(Date.now() - started).toBeGreaterThanOrEqual(70);
  });
});
