/// <reference lib="dom" />
/**
 * The web demo's page (served by `serve.ts`): one tab is one device, `?device=laptop` (Ana on
 * platform course-a) or `?device=phone` (Ana on platform course-b, linked with a code). It
 * uses the SDK's browser entry — gRPC-web over fetch — and its React bindings. Each device
 * keeps its queue, replica and cursor in an IndexedDB database of its own.
 */
import { useEffect, useState, type ReactElement } from "react";
import { createRoot } from "react-dom/client";
import {
  createAssertionTokenProvider,
  createContinuityClient,
  createIndexedDbQueueStore,
  createLinkCode,
  createReplica,
  grantStreamAccess,
  redeemLinkCode,
  type ContinuityClient,
  type HandoffOffer,
  type JsonStream,
  type Replica,
} from "@continuity/sdk";
import { useConnected, useStream, useSyncStatus } from "@continuity/sdk/react";

type CourseProgress = { course?: string; lesson?: number; position?: number; completed?: string[] };

const COURSE = "intro-to-sql";
const STREAM = `${COURSE}-progress`;
const STREAM_TYPE = "org.example.course-progress";

interface Device {
  readonly id: "ana-laptop" | "ana-phone";
  readonly name: string;
  readonly platform: "course-a" | "course-b";
  readonly account: string;
}
const DEVICES: Record<"laptop" | "phone", Device> = {
  laptop: { id: "ana-laptop", name: "Ana's laptop", platform: "course-a", account: "learner-42" },
  phone: { id: "ana-phone", name: "Ana's phone", platform: "course-b", account: "ana@course-b" },
};
const device = DEVICES[new URLSearchParams(location.search).get("device") === "phone" ? "phone" : "laptop"];


async function assertion(): Promise<string> {
  // The platform's backend signs for its signed-in user; the page never sees a key.
  const response = await fetch(`/assertion?platform=${device.platform}&account=${encodeURIComponent(device.account)}`);
  if (!response.ok) throw new Error(`the platform backend answered ${response.status}`);
  return response.text();
}

function openClient(address: string): ContinuityClient {
  return createContinuityClient({
    address,
    deadlineMs: 4_000,
    retry: { maxAttempts: 2, baseDelayMs: 100, maxDelayMs: 500 },
    tokenProvider: createAssertionTokenProvider({ deviceId: device.id, deviceDisplayName: device.name, getAssertion: assertion }),
  });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Tries `work` until it succeeds: a tab started offline waits for the network. */
async function untilOnline<T>(work: () => Promise<T>, onWait: (error: unknown) => void): Promise<T> {
  for (;;) {
    try {
      return await work();
    } catch (error) {
      onWait(error);
      await Promise.race([sleep(2_000), new Promise((resolve) => window.addEventListener("online", resolve, { once: true }))]);
    }
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

interface DemoConfig {
  /** The reference server's gRPC-web endpoint. */
  readonly grpcWeb: string;
  /** This run of `pnpm demo:web`: what an earlier run left in storage belongs to another server. */
  readonly run: string;
}

const config = (await (await fetch("/config.json")).json()) as DemoConfig;
for (const key of Object.keys(localStorage)) {
  if (key.startsWith("continuity-demo:") && !key.startsWith(`continuity-demo:${config.run}:`)) localStorage.removeItem(key);
}
for (const { name } of await indexedDB.databases()) {
  if (name?.startsWith("continuity-demo:") === true && !name.startsWith(`continuity-demo:${config.run}:`)) indexedDB.deleteDatabase(name);
}
/** The device's pending writes, replica and cursor: durable across reloads, one database per device and run. */
const store = createIndexedDbQueueStore({ databaseName: `continuity-demo:${config.run}:${device.id}` });
const linkedKey = `continuity-demo:${config.run}:${device.id}:linked`;

function App({ address }: { address: string }): ReactElement {
  const [client] = useState(() => openClient(address));
  const [linked, setLinked] = useState(() => device.platform === "course-a" || localStorage.getItem(linkedKey) === "yes");
  const [replica, setReplica] = useState<Replica>();
  const [progress, setProgress] = useState<JsonStream<CourseProgress>>();
  const [waiting, setWaiting] = useState<string>();
  const [error, setError] = useState<string>();

  useEffect(() => {
    if (!linked) return;
    let cancelled = false;
    void (async () => {
      const opened = await untilOnline(() => createReplica(client, { store, heartbeatSeconds: 5 }), (cause) => setWaiting(message(cause)));
      if (cancelled) return void opened.close();
      setReplica(opened);
      // The laptop owns the course's progress; the phone opens it when it takes a handoff.
      if (device.platform === "course-a") {
        const stream = await untilOnline(
          () => opened.openStream<CourseProgress>({ stream: STREAM, create: { type: STREAM_TYPE, encoding: "json-merge-patch" } }),
          (cause) => setWaiting(message(cause)),
        );
        setProgress(stream);
      }
      setWaiting(undefined);
    })();
    return () => {
      cancelled = true;
    };
  }, [client, linked]);

  // Back online: send what waited now, rather than after the current backoff.
  useEffect(() => {
    const flush = (): void => progress?.flush();
    window.addEventListener("online", flush);
    return () => window.removeEventListener("online", flush);
  }, [progress]);

  const guard = (work: () => Promise<unknown>) => () => {
    setError(undefined);
    work().catch((cause: unknown) => setError(message(cause)));
  };

  return (
    <>
      <h1>{device.name}</h1>
      <p className="sub">
        Platform {device.platform}, account {device.account} — <ConnectionBadge replica={replica} />
      </p>
      {error !== undefined && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {waiting !== undefined && <p data-testid="waiting">Waiting for the network ({waiting}); what this tab wrote is kept locally.</p>}
      {!linked && <LinkForm client={client} onLinked={() => setLinked(true)} />}
      {replica !== undefined && device.platform === "course-a" && progress !== undefined && (
        <LaptopActions client={client} replica={replica} progress={progress} guard={guard} />
      )}
      {replica !== undefined && device.platform === "course-b" && <PhoneActions replica={replica} progress={progress} onOpened={setProgress} guard={guard} />}
      {progress !== undefined && replica !== undefined && <ProgressCard progress={progress} replica={replica} />}
      {progress !== undefined && <History client={client} progress={progress} />}
    </>
  );
}

function ConnectionBadge({ replica }: { replica: Replica | undefined }): ReactElement {
  const online = useConnected(replica);
  return (
    <span className={`badge ${online ? "online" : "offline"}`} data-testid="connection">
      {online ? "online" : "offline"}
    </span>
  );
}

function ProgressCard({ progress }: { progress: JsonStream<CourseProgress>; replica: Replica }): ReactElement {
  const state = useStream(progress);
  const status = useSyncStatus(progress);
  return (
    <section data-testid="progress" data-version={String(status.confirmedVersion)} data-pending={status.pendingCount} data-position={state.position ?? 0}>
      <h2>Course {COURSE}</h2>
      <p>
        Lesson <b>{state.lesson ?? 1}</b>, at <b>{state.position ?? 0} s</b>; completed: {(state.completed ?? []).join(", ") || "none yet"}
      </p>
      <p className="mono">
        version {String(status.confirmedVersion)} · head {status.headHash.slice(0, 12)}… · <span data-testid="pending">{status.pendingCount} waiting to send</span>
        {status.halted !== undefined && <span className="error"> · halted: {status.halted.message}</span>}
      </p>
    </section>
  );
}

function LaptopActions(props: {
  client: ContinuityClient;
  replica: Replica;
  progress: JsonStream<CourseProgress>;
  guard: (work: () => Promise<unknown>) => () => void;
}): ReactElement {
  const { client, replica, progress, guard } = props;
  const [code, setCode] = useState<string>();
  const [shared, setShared] = useState(false);
  return (
    <section>
      <h2>Study</h2>
      <button
        data-testid="complete-lesson"
        onClick={guard(() =>
          progress.update((draft) => {
            const lesson = draft.lesson ?? 1;
            draft.course = COURSE;
            draft.completed = [...(draft.completed ?? []), `lesson-${lesson}`];
            draft.lesson = lesson + 1;
            draft.position = 0;
          }),
        )}
      >
        Complete lesson
      </button>
      <button data-testid="watch" className="secondary" onClick={guard(() => progress.update((draft) => void (draft.position = (draft.position ?? 0) + 60)))}>
        Watch a minute
      </button>
      <h2>Other devices</h2>
      <button
        data-testid="link"
        className="secondary"
        onClick={guard(async () => {
          setCode((await createLinkCode(client)).code);
        })}
      >
        Link the phone's platform
      </button>
      {code !== undefined && (
        <p>
          Type this code on the phone: <b className="mono" data-testid="link-code">{code}</b>
        </p>
      )}
      <button
        data-testid="grant"
        className="secondary"
        onClick={guard(async () => {
          // Once course-b is linked: without a grant it sees none of course-a's streams.
          await grantStreamAccess(client, { platform: "course-b", streamType: STREAM_TYPE, access: "read-write" });
          setShared(true);
        })}
      >
        Let course-b read and write course progress
      </button>
      {shared && <span data-testid="shared">shared with course-b</span>}
      <button
        data-testid="hand-off"
        onClick={guard(async () => {
          const state = progress.confirmedState;
          await replica.handOff({
            streams: [progress],
            resume: {
              activityType: "org.example.lesson",
              resource: COURSE,
              position: `lesson-${state.lesson ?? 1}/t=${state.position ?? 0}`,
              fallbackUrl: `https://course-b.example/${COURSE}/lesson-${state.lesson ?? 1}?t=${state.position ?? 0}`,
            },
            targetDevice: "ana-phone",
          });
        })}
      >
        Hand off to the phone
      </button>
    </section>
  );
}

function LinkForm({ client, onLinked }: { client: ContinuityClient; onLinked: () => void }): ReactElement {
  const [code, setCode] = useState("");
  const [error, setError] = useState<string>();
  return (
    <section>
      <h2>Link this platform</h2>
      <p>Ana's account on {device.platform} joins her Continuity data only with a code from a device that already has it.</p>
      <input data-testid="code-input" value={code} onChange={(event) => setCode(event.target.value)} placeholder="link code" />
      <button
        data-testid="redeem"
        onClick={() => {
          setError(undefined);
          void (async () => {
            await redeemLinkCode(client, { code: code.trim(), assertion: await assertion() });
            localStorage.setItem(linkedKey, "yes");
            onLinked();
          })().catch((cause: unknown) => setError(message(cause)));
        }}
      >
        Link
      </button>
      {error !== undefined && <p className="error">{error}</p>}
    </section>
  );
}

function PhoneActions(props: {
  replica: Replica;
  progress: JsonStream<CourseProgress> | undefined;
  onOpened: (stream: JsonStream<CourseProgress>) => void;
  guard: (work: () => Promise<unknown>) => () => void;
}): ReactElement {
  const { replica, progress, onOpened, guard } = props;
  const [offers, setOffers] = useState<readonly HandoffOffer[]>([]);
  const [resumedAt, setResumedAt] = useState<string>();
  useEffect(() => replica.on("handoffOffered", (offer) => setOffers((list) => [...list, offer])), [replica]);
  return (
    <section>
      <h2>Handoffs</h2>
      {offers.length === 0 && resumedAt === undefined && <p>Nothing offered yet: hand off from the laptop.</p>}
      {offers.map((offer) => (
        <p key={offer.handoff.name}>
          {offer.handoff.sourceDevice.split("/").at(-1)} offers {offer.checkpoint?.resume?.resource}{" "}
          <button
            data-testid="accept"
            onClick={guard(async () => {
              const resumed = await offer.accept();
              setOffers((list) => list.filter((other) => other !== offer));
              setResumedAt(resumed.resume.position);
              onOpened(await replica.openStream<CourseProgress>({ stream: STREAM }));
            })}
          >
            Accept
          </button>
        </p>
      ))}
      {resumedAt !== undefined && (
        <p>
          Resumed at <b data-testid="resumed-at">{resumedAt}</b>
        </p>
      )}
      {progress !== undefined && (
        <button data-testid="watch" className="secondary" onClick={guard(() => progress.update((draft) => void (draft.position = (draft.position ?? 0) + 60)))}>
          Watch a minute
        </button>
      )}
    </section>
  );
}

/** The server's history of the stream: every write appears once, with the device and its client sequence. */
function History({ client, progress }: { client: ContinuityClient; progress: JsonStream<CourseProgress> }): ReactElement {
  const status = useSyncStatus(progress);
  const [lines, setLines] = useState<readonly string[]>([]);
  useEffect(() => {
    if (!status.connected) return;
    let cancelled = false;
    client.streams
      .listDeltas({ stream: progress.name, afterVersion: 0n })
      .then(({ deltas }) => {
        if (!cancelled) setLines(deltas.map((delta) => `v${delta.version} ${delta.device.split("/").at(-1)} #${delta.clientSequence}`));
      })
      .catch(() => undefined);
    return () => {
      cancelled = true;
    };
  }, [client, progress, status.confirmedVersion, status.connected]);
  return (
    <section>
      <h2>Server history</h2>
      {!status.connected && <p>The server is out of reach; the list is as it was last seen.</p>}
      <ol className="mono" data-testid="history">
        {lines.map((line) => (
          <li key={line}>{line}</li>
        ))}
      </ol>
    </section>
  );
}

if ("serviceWorker" in navigator) await navigator.serviceWorker.register("/sw.js").catch(() => undefined);
document.title = `Continuity — ${device.name}`;
createRoot(document.getElementById("root")!).render(<App address={config.grpcWeb} />);
