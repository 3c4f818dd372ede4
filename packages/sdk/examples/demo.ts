/**
 * `pnpm demo`: a learner's course progress follows them from a laptop on one platform to a
 * phone on another, through an outage, and every step is checked against the hash chain.
 *
 * Runs the reference server in this process (127.0.0.1:0, temporary data directory, two
 * generated platforms), exits 0 when the story verifies and 1 otherwise, and leaves
 * nothing running.
 */
import {
  createAssertionTokenProvider,
  createContinuityClient,
  createLinkCode,
  createReplica,
  grantStreamAccess,
  redeemLinkCode,
  type ContinuityClient,
  type HandoffOffer,
  type JsonStream,
  type Replica,
} from "../src/index.js";
import { startDemoServer, type DemoServer } from "./support/demo-server.js";
import { startUnpluggableProxy, type UnpluggableProxy } from "./support/unpluggable-proxy.js";

type CourseProgress = { course: string; lesson: number; position: number; completed: string[] };

const COURSE = "intro-to-sql";
const STREAM = `${COURSE}-progress`;

const failures: string[] = [];
const started = Date.now();

function step(title: string): void {
  console.log(`\n▸ ${title}`);
}
function sent(text: string): void {
  console.log(`    → ${text}`);
}
function check(ok: boolean, text: string): void {
  console.log(`    ${ok ? "✓" : "✗"} ${text}`);
  if (!ok) failures.push(text);
}
function short(hex: string): string {
  return `${hex.slice(0, 12)}…`;
}
function describe(progress: JsonStream<CourseProgress>): string {
  const { confirmedVersion, headHash, pendingCount } = progress.status;
  return `version ${confirmedVersion}, head ${short(headHash)}, pending ${pendingCount}`;
}

function clientFor(address: string, server: DemoServer, platform: "course-a" | "course-b", account: string, device: string, name: string): ContinuityClient {
  return createContinuityClient({
    address,
    deadlineMs: 2_000,
    retry: { maxAttempts: 2, baseDelayMs: 50, maxDelayMs: 200 },
    tokenProvider: createAssertionTokenProvider({
      deviceId: device,
      deviceDisplayName: name,
      // In production the platform's backend signs this and the app fetches it.
      getAssertion: () => server.assert(platform, account),
    }),
  });
}

async function main(): Promise<void> {
  const resources: { close(): unknown }[] = [];
  let server: DemoServer | undefined;
  let proxy: UnpluggableProxy | undefined;
  try {
    step("Starting the reference server (embedded SQLite store, two configured platforms)");
    server = await startDemoServer();
    proxy = await startUnpluggableProxy(server.address);
    sent(`listening on ${server.address}; the laptop reaches it through a proxy at ${proxy.address}`);

    step("Laptop on platform course-a: the learner works through the course");
    const laptopClient = clientFor(proxy.address, server, "course-a", "learner-42", "ana-laptop", "Ana's laptop");
    resources.push(laptopClient);
    const laptop = await createReplica(laptopClient, { heartbeatSeconds: 1 });
    resources.push(laptop);
    sent(`signed in as ${laptop.subject}, device ${laptop.device}`);
    const progress = await laptop.openStream<CourseProgress>({
      stream: STREAM,
      create: { type: "org.example.course-progress", encoding: "json-merge-patch" },
    });
    for (const lesson of [1, 2, 3]) {
      await progress.update((draft) => {
        draft.course = COURSE;
        draft.lesson = lesson + 1;
        draft.position = 0;
        draft.completed = [...(draft.completed ?? []), `lesson-${lesson}`];
      });
      await progress.settled();
      sent(`completed lesson ${lesson}: ${describe(progress)}`);
    }
    check(progress.status.confirmedVersion === 3n, "three writes acknowledged, each verified against the hash chain");

    step("Linking platform course-b with a one-time code (the learner's consent)");
    const { code } = await createLinkCode(laptopClient);
    sent(`link code ${code} created on course-a`);
    const phoneClient = clientFor(server.address, server, "course-b", "ana@course-b", "ana-phone", "Ana's phone");
    resources.push(phoneClient);
    const link = await redeemLinkCode(phoneClient, { code, assertion: await server.assert("course-b", "ana@course-b") });
    sent(`redeemed on course-b: ${link.name}`);
    const grant = await grantStreamAccess(laptopClient, { platform: "course-b", streamType: "org.example.course-progress", access: "read-write" });
    sent(`course-a granted course-b read-write on ${grant.streamType}`);
    const phoneSession = await phoneClient.session();
    check(phoneSession.subject === laptop.subject, `course-b's account now acts for the same subject (${phoneSession.subject})`);

    step("The laptop goes offline and the learner keeps working");
    proxy.unplug();
    await progress.update((draft) => {
      draft.position = 120;
    });
    await progress.update((draft) => {
      draft.position = 312;
    });
    await waitUntil(() => !progress.status.connected || !laptop.connected, 5_000);
    sent(`two writes queued locally: ${describe(progress)}, connected: ${progress.status.connected && laptop.connected}`);
    check(progress.state.position === 312 && progress.status.pendingCount === 2, "the local state shows the work at once; the queue holds it");

    step("Back online: the queue flushes, exactly once");
    proxy.plug();
    progress.flush();
    await progress.settled();
    sent(`flushed: ${describe(progress)}`);
    const { stream } = await laptopClient.streams.getStream({ name: progress.name });
    const serverHead = stream === undefined ? "" : Buffer.from(stream.headHash).toString("hex");
    check(stream?.headVersion === progress.status.confirmedVersion && serverHead === progress.status.headHash, `server head ${short(serverHead)} equals the laptop's verified head`);
    const { deltas } = await laptopClient.streams.listDeltas({ stream: progress.name, afterVersion: 0n });
    const sequences = deltas.map((delta) => Number(delta.clientSequence));
    check(sequences.join(",") === "1,2,3,4,5", `client sequences ${sequences.join(", ")}: nothing lost, nothing twice`);

    step("Handoff: the phone on platform course-b picks up where the laptop stopped");
    const phone = await createReplica(phoneClient, { heartbeatSeconds: 1 });
    resources.push(phone);
    await phone.whenConnected();
    const offer = new Promise<HandoffOffer>((resolve) => phone.on("handoffOffered", resolve));
    const { checkpoint, handoff } = await laptop.handOff({
      streams: [progress],
      resume: {
        activityType: "org.example.lesson",
        resource: COURSE,
        position: "lesson-4/t=312",
        fallbackUrl: "https://course-b.example/intro-to-sql/lesson-4?t=312",
      },
      targetDevice: "ana-phone",
    });
    sent(`checkpoint ${checkpoint.name} (digest ${short(Buffer.from(checkpoint.digest).toString("hex"))}) offered as ${handoff.name}`);
    const received = await withTimeout(offer, 5_000, "the handoff offer never reached the phone");
    sent(`phone received the offer from ${received.handoff.sourceDevice}`);
    const resumed = await received.accept();
    const [state] = resumed.streams;
    const resumedState = state?.kind === "json" ? (state.state as CourseProgress) : undefined;
    sent(`accepted; resume at ${resumed.resume.resource} ${resumed.resume.position}`);
    sent(`state at the checkpoint: lesson ${resumedState?.lesson}, position ${resumedState?.position}, version ${state?.version}, head ${short(state?.headHash ?? "")}`);
    check(resumed.resume.position === "lesson-4/t=312", "the phone resumes at the same lesson and position");
    check(
      state?.headHash === progress.status.headHash && JSON.stringify(resumedState) === JSON.stringify(progress.confirmedState),
      "the phone's verified state equals the laptop's, hash for hash",
    );

    const phoneProgress = await phone.openStream<CourseProgress>({ stream: progress.name });
    await phoneProgress.update((draft) => {
      draft.position = 330;
    });
    await phoneProgress.settled();
    await waitUntil(() => progress.confirmedState.position === 330, 5_000);
    sent(`the phone writes position 330; the laptop sees it live: ${describe(progress)}`);
    check(progress.status.headHash === phoneProgress.status.headHash, "both devices agree on the head hash");
  } finally {
    for (const resource of resources.reverse()) await resource.close();
    await proxy?.close();
    await server?.close();
  }
}

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
}

async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

try {
  await main();
} catch (error) {
  failures.push(error instanceof Error ? error.message : String(error));
  console.error(error);
}
const seconds = ((Date.now() - started) / 1000).toFixed(1);
if (failures.length === 0) {
  console.log(`\nThe story verifies (${seconds} s).`);
  process.exitCode = 0;
} else {
  console.log(`\nThe story does NOT verify (${seconds} s):\n${failures.map((failure) => `  - ${failure}`).join("\n")}`);
  process.exitCode = 1;
}
