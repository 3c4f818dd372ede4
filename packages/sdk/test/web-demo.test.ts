/// <reference lib="dom" />
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startWebDemo, type WebDemo } from "../examples/web/serve.js";
import { createAssertionTokenProvider, createContinuityClient } from "../src/index.js";

// `pnpm demo:web` driven the way a person would, in Debian's Chromium (installed by
// scripts/ensure-chromium.mjs) through playwright-core: two browser contexts are Ana's laptop
// and phone, each with its own storage. The laptop studies, links the phone, goes offline,
// writes, reloads while still offline, comes back and flushes; then it hands off to the phone.
// The server's history is read independently over gRPC to check every write landed once.
// Screenshots go to .artifacts/web-demo/.

const root = join(dirname(fileURLToPath(import.meta.url)), "../../..");
const artifacts = join(root, ".artifacts", "web-demo");
const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

let demo: WebDemo;
const t0 = Date.now();
let browser: Browser;
const errors: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run \`node scripts/ensure-chromium.mjs\` (pnpm test does)`);
  rmSync(artifacts, { recursive: true, force: true });
  mkdirSync(artifacts, { recursive: true });
  demo = await startWebDemo();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
});
afterAll(async () => {
  await browser?.close();
  await demo?.close();
});

async function openDevice(device: "laptop" | "phone"): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width: 760, height: 900 } });
  const page = await context.newPage();
  page.on("pageerror", (error) => errors.push(`${device}: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") console.error(`${device} console: ${message.text()}`);
  });
  await page.goto(`${demo.url}/?device=${device}`);
  return { context, page };
}

const progressOf = (page: Page) => page.getByTestId("progress");
const poll = <T>(read: () => Promise<T> | T) => expect.poll(read, { timeout: 10_000, interval: 50 });

async function shot(page: Page, name: string): Promise<void> {
  console.log(`${((Date.now() - t0) / 1000).toFixed(1)} s: ${name}`);
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
}

it("hands progress from a laptop tab to a phone tab, through an offline spell and a reload, every write once", { timeout: 60_000 }, async () => {
  const laptop = await openDevice("laptop");
  await poll(() => laptop.page.getByTestId("connection").textContent()).toBe("online");
  for (const version of ["1", "2", "3"]) {
    await laptop.page.getByTestId("complete-lesson").click();
    await poll(() => progressOf(laptop.page).getAttribute("data-version")).toBe(version);
  }
  await shot(laptop.page, "1-laptop-studied");

  // The learner's consent: a code from the laptop, typed on the phone.
  await laptop.page.getByTestId("link").click();
  const code = (await laptop.page.getByTestId("link-code").textContent()) ?? "";
  expect(code).toMatch(/\S{6,}/);
  const phone = await openDevice("phone");
  await phone.page.getByTestId("code-input").fill(code);
  await phone.page.getByTestId("redeem").click();
  await poll(() => phone.page.getByTestId("connection").textContent()).toBe("online");
  await laptop.page.getByTestId("grant").click();
  await laptop.page.getByTestId("shared").waitFor();

  // Offline: the writes show at once and wait in the tab's store; a reload keeps them.
  await laptop.context.setOffline(true);
  await laptop.page.getByTestId("watch").click();
  await laptop.page.getByTestId("watch").click();
  await poll(() => progressOf(laptop.page).getAttribute("data-pending")).toBe("2");
  expect(await progressOf(laptop.page).getAttribute("data-position")).toBe("120");
  // Queued in the tab's IndexedDB database: the stream's record holds both writes.
  const queued = await laptop.page.evaluate(async () => {
    const name = (await indexedDB.databases()).map((database) => database.name ?? "").find((database) => database.endsWith(":ana-laptop"));
    if (name === undefined) return [];
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const open = indexedDB.open(name);
      open.onsuccess = () => resolve(open.result);
      open.onerror = () => reject(open.error);
    });
    const values = await new Promise<unknown[]>((resolve, reject) => {
      const all = db.transaction("queue").objectStore("queue").getAll();
      all.onsuccess = () => resolve(all.result);
      all.onerror = () => reject(all.error);
    });
    db.close();
    // The stream's record is JSON; the cursor beside it is not.
    const records = values.map(String).filter((value) => value.startsWith("{")).map((value) => JSON.parse(value) as { pending?: { payload: string }[] });
    return records.flatMap((record) => record.pending ?? []).map((op) => atob(op.payload));
  });
  expect(queued).toEqual(['{"position":60}', '{"position":120}']);
  await shot(laptop.page, "2-laptop-offline-queued");
  // A cold start with no network: the replica and the stream open from the tab's store.
  await laptop.page.reload();
  await poll(() => progressOf(laptop.page).getAttribute("data-pending")).toBe("2");
  expect(await progressOf(laptop.page).getAttribute("data-position")).toBe("120");
  expect(await progressOf(laptop.page).getAttribute("data-version")).toBe("3");
  expect(await laptop.page.getByTestId("connection").textContent()).toBe("offline");
  await shot(laptop.page, "3-laptop-reloaded-offline");

  // Back online: the queue flushes exactly once.
  await laptop.context.setOffline(false);
  await poll(() => progressOf(laptop.page).getAttribute("data-version")).toBe("5");
  expect(await progressOf(laptop.page).getAttribute("data-pending")).toBe("0");
  expect(await progressOf(laptop.page).getAttribute("data-position")).toBe("120");
  await poll(() => laptop.page.getByTestId("history").locator("li").allTextContents()).toEqual([
    "v1 ana-laptop #1",
    "v2 ana-laptop #2",
    "v3 ana-laptop #3",
    "v4 ana-laptop #4",
    "v5 ana-laptop #5",
  ]);
  await shot(laptop.page, "4-laptop-flushed");

  // Handoff: the phone takes over where the laptop stopped.
  await laptop.page.getByTestId("hand-off").click();
  await phone.page.getByTestId("accept").click();
  await poll(() => phone.page.getByTestId("resumed-at").textContent()).toBe("lesson-4/t=120");
  await poll(() => progressOf(phone.page).getAttribute("data-version")).toBe("5");
  await phone.page.getByTestId("watch").click();
  await poll(() => progressOf(laptop.page).getAttribute("data-position")).toBe("180");
  await shot(phone.page, "5-phone-resumed");
  await shot(laptop.page, "6-laptop-sees-phone");

  // The server's own record, read over gRPC by another device of the same account.
  const observer = createContinuityClient({
    address: demo.grpcAddress,
    tokenProvider: createAssertionTokenProvider({ deviceId: "observer", getAssertion: () => demo.platforms.assert("course-a", "learner-42") }),
  });
  try {
    const { subject } = await observer.session();
    const { deltas } = await observer.streams.listDeltas({ stream: `${subject}/streams/intro-to-sql-progress`, afterVersion: 0n });
    expect(deltas.map((delta) => `${delta.device.split("/").at(-1)}#${delta.clientSequence}`)).toEqual([
      "ana-laptop#1",
      "ana-laptop#2",
      "ana-laptop#3",
      "ana-laptop#4",
      "ana-laptop#5",
      "ana-phone#1",
    ]);
  } finally {
    observer.close();
  }
  expect(errors).toEqual([]);
});
