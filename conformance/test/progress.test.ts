import { afterEach, describe, expect, it, vi } from "vitest";
import { createProgressReporter } from "../src/reporters/progress.js";
import type { CaseResult } from "../src/runner/run-suite.js";

function result(id: string, status: CaseResult["status"]): CaseResult {
  return { id, status, requirements: ["GEN-001"], profile: "core", level: "MUST", durationMs: 5 };
}

function fakeStream(isTTY: boolean) {
  const writes: string[] = [];
  return { writes, stream: { isTTY, columns: 80, write: (text: string) => writes.push(text) } };
}

afterEach(() => {
  vi.useRealTimers();
});

describe("the progress line", () => {
  it("on a terminal is one line redrawn in place, moved out of the way of other output", () => {
    let clock = 0;
    const { writes, stream } = fakeStream(true);
    const progress = createProgressReporter(stream, { now: () => clock });
    progress.plan(3);
    progress.caseStarted("a.one");
    clock = 2000;
    progress.caseFinished(result("a.one", "pass"));
    progress.caseStarted("a.two");
    clock = 5000;
    progress.caseFinished(result("a.two", "fail"));
    expect(writes.every((w) => w.startsWith("\r\x1b[2K") && !w.includes("\n"))).toBe(true);
    expect(writes.at(-1)).toBe("\r\x1b[2Kconformance 2/3 done (1 pass, 1 fail) · 5s");
    progress.caseStarted("a.three");
    clock = 8000;
    const printed: string[] = [];
    progress.around(() => printed.push(`erased before print: ${writes.at(-1) === "\r\x1b[2K"}`));
    expect(printed).toEqual(["erased before print: true"]);
    expect(writes.at(-1)).toBe("\r\x1b[2Kconformance 2/3 done (1 pass, 1 fail) · 8s · running 1: a.three 3s");
    progress.stop();
    expect(writes.at(-1)).toBe("\r\x1b[2K");
  });

  it("cuts a line wider than the terminal", () => {
    const { writes, stream } = fakeStream(true);
    const progress = createProgressReporter({ ...stream, columns: 30 }, { now: () => 0 });
    progress.plan(100);
    progress.caseStarted("a-case-with-a-very-long-name.that-goes-on");
    expect(writes.at(-1)!.length).toBeLessThanOrEqual("\r\x1b[2K".length + 29);
    expect(writes.at(-1)!.endsWith("…")).toBe(true);
    progress.stop();
  });

  it("elsewhere writes a plain line every interval and never redraws", () => {
    vi.useFakeTimers();
    let clock = 0;
    const { writes, stream } = fakeStream(false);
    const progress = createProgressReporter(stream, { intervalMs: 10_000, now: () => clock });
    progress.plan(2);
    progress.caseStarted("a.one");
    progress.around(() => undefined);
    expect(writes).toEqual([]);
    clock = 10_000;
    vi.advanceTimersByTime(10_000);
    expect(writes).toEqual(["conformance 0/2 done · 10s · running 1: a.one 10s\n"]);
    progress.caseFinished(result("a.one", "pass"));
    clock = 20_000;
    vi.advanceTimersByTime(10_000);
    expect(writes.at(-1)).toBe("conformance 1/2 done (1 pass) · 20s\n");
    progress.stop();
    vi.advanceTimersByTime(30_000);
    expect(writes).toHaveLength(2);
  });
});
