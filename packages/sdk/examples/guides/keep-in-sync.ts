// Code of docs/guides/sdk-keep-in-sync.md; compiled with the SDK so the guide cannot rot.
import {
  createAssertionTokenProvider,
  createContinuityClient,
  createFileQueueStore,
  createReplica,
  type JsonStream,
} from "@continuity/sdk";

// #region setup
const client = createContinuityClient({
  address: "https://continuity.example.com",
  tokenProvider: createAssertionTokenProvider({
    deviceId: "ana-laptop-7f3a",
    deviceDisplayName: "Ana's laptop",
    // Your backend signs the assertion; the app only fetches it.
    getAssertion: async () => (await fetch("https://api.example.com/continuity/assertion")).text(),
  }),
});
const replica = await createReplica(client, { store: createFileQueueStore("./.continuity") });
// #endregion setup

// #region open
// Optional fields: a new stream starts as {} (version 0), and the type is not checked.
type CourseProgress = { lesson?: number; position?: number; completed?: string[] };

const progress: JsonStream<CourseProgress> = await replica.openStream<CourseProgress>({
  stream: "intro-to-sql-progress",
  create: { type: "org.example.course-progress", encoding: "json-merge-patch" },
});
// #endregion open

// #region update
await progress.update((draft) => {
  draft.lesson = 4;
  draft.position = 0;
  draft.completed = [...(draft.completed ?? []), "lesson-3"];
});
console.log(progress.state.lesson); // 4, at once — even offline
// #endregion update

// #region observe
progress.on("change", ({ source }) => {
  if (source === "remote") render(progress.state);
});
progress.on("rejected", ({ opId, reason }) => {
  console.warn(`write ${opId} was not applied: ${reason}`);
});
progress.on("status", ({ connected, pendingCount }) => {
  showSyncBadge(connected ? (pendingCount === 0 ? "synced" : "syncing") : "offline");
});
// #endregion observe

// #region settle
await progress.settled({ signal: AbortSignal.timeout(5_000) });
console.log(progress.status.confirmedVersion, progress.status.headHash);
await replica.close();
client.close();
// #endregion settle

declare function render(state: CourseProgress): void;
declare function showSyncBadge(state: "synced" | "syncing" | "offline"): void;
