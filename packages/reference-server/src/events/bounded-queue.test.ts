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
});
