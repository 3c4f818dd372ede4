/// <reference lib="dom" />
import { JSDOM } from "jsdom";
import { createElement, StrictMode, type ReactElement } from "react";
import { afterEach, expect, it } from "vitest";
import { createReplica, type JsonStream, type Replica } from "../src/index.js";
import { useConnected, useStream, useSyncStatus } from "../src/react/index.js";
import { deviceClient, startReferenceServer } from "./support/reference-server.js";
import { waitFor } from "./support/wait.js";

// The hooks on real handles over a real server: a component shows a stream's state and
// sync status, and re-renders when this device writes, when another device's write arrives,
// and when the write is acknowledged.

// A DOM for React only: vitest's jsdom environment would also swap the realm's typed arrays,
// which grpc-js (under the Node client) refuses as metadata values. Updates come from the
// network, as in an app, so React schedules its renders itself (no act()).
const dom = new JSDOM("<!doctype html><html><body></body></html>");
Object.assign(globalThis, { window: dom.window, document: dom.window.document, navigator: dom.window.navigator, IS_REACT_ACT_ENVIRONMENT: false });
const { createRoot } = await import("react-dom/client");

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

type Progress = { lesson?: number };

function Lesson({ progress, replica, renders }: { progress: JsonStream<Progress>; replica: Replica; renders: string[] }): ReactElement {
  const state = useStream(progress);
  const status = useSyncStatus(progress);
  const online = useConnected(replica);
  const text = `lesson ${state.lesson ?? "-"}; pending ${status.pendingCount}; v${status.confirmedVersion}; sync ${status.connected ? "on" : "off"}; ${online ? "online" : "offline"}`;
  renders.push(text);
  return createElement("p", { id: "lesson" }, text);
}

it("useStream, useSyncStatus and useConnected re-render on local writes, acknowledgements and remote writes", async () => {
  const server = await startReferenceServer();
  cleanups.push(() => server.dispose());
  const phoneClient = deviceClient(server.address, server.platformA, "ana", "phone");
  const laptopClient = deviceClient(server.address, server.platformA, "ana", "laptop");
  cleanups.push(() => phoneClient.close(), () => laptopClient.close());
  const phone = await createReplica(phoneClient);
  cleanups.push(() => phone.close());
  await phone.whenConnected();
  const progress = await phone.openStream<Progress>({ stream: "course-42", create: { type: "org.example.course-progress", encoding: "json-merge-patch" } });
  cleanups.push(() => progress.close());

  const container = document.createElement("div");
  document.body.append(container);
  const root = createRoot(container);
  cleanups.push(() => root.unmount());
  const renders: string[] = [];
  root.render(createElement(StrictMode, null, createElement(Lesson, { progress, replica: phone, renders })));
  const shown = (): string => container.querySelector("#lesson")?.textContent ?? "";
  await waitFor(() => shown() === "lesson -; pending 0; v0; sync on; online", `first render (shows "${shown()}")`, 5_000);

  await progress.update({ lesson: 2 });
  // The optimistic state shows before the server answered; the acknowledgement follows.
  await waitFor(() => renders.includes("lesson 2; pending 1; v0; sync on; online"), `optimistic write rendered (rendered ${JSON.stringify(renders)})`, 5_000);
  await waitFor(() => shown() === "lesson 2; pending 0; v1; sync on; online", `acknowledged write rendered (shows "${shown()}")`, 5_000);

  const laptop = await createReplica(laptopClient);
  cleanups.push(() => laptop.close());
  const onLaptop = await laptop.openStream<Progress>({ stream: "course-42" });
  cleanups.push(() => onLaptop.close());
  await onLaptop.update({ lesson: 5 });
  await onLaptop.settled();
  await waitFor(() => shown() === "lesson 5; pending 0; v2; sync on; online", `remote write rendered (shows "${shown()}")`, 5_000);

  // Offline: the write shows and waits in the queue; only status events say so.
  await onLaptop.close();
  await laptop.close();
  await server.stop();
  await progress.update({ lesson: 6 });
  await waitFor(() => shown() === "lesson 6; pending 1; v2; sync off; offline", `offline write rendered (shows "${shown()}")`, 10_000);
  const restarted = await server.restart();
  cleanups.push(() => restarted.dispose());
  await waitFor(() => shown() === "lesson 6; pending 0; v3; sync on; online", `reconnection rendered (shows "${shown()}")`, 15_000);
});
