// Code of docs/guides/sdk-hand-off.md; compiled with the SDK so the guide cannot rot.
import { v1, type JsonStream, type Replica } from "@continuity/sdk";

type CourseProgress = { lesson: number; position: number };
declare const laptop: Replica;
declare const phone: Replica;
declare const progress: JsonStream<CourseProgress>;
declare function openLesson(resource: string, position: string, state: unknown): void;

// #region offer
const { checkpoint, handoff } = await laptop.handOff({
  streams: [progress],
  resume: {
    activityType: "org.example.lesson",
    resource: "intro-to-sql",
    position: "lesson-4/t=312",
    fallbackUrl: "https://learn.example.com/intro-to-sql/lesson-4?t=312",
  },
  ttlSeconds: 120,
});
console.log(`offered ${checkpoint.name} as ${handoff.name}`);
// #endregion offer

// #region receive
phone.on("handoffOffered", async (offer) => {
  if (!confirm(`Continue "${offer.checkpoint?.resume?.resource}" here?`)) {
    await offer.decline();
    return;
  }
  const { resume, streams } = await offer.accept();
  const [course] = streams;
  openLesson(resume.resource, resume.position, course?.kind === "json" ? course.state : undefined);
});
// #endregion receive

// #region resolved
laptop.on("handoffResolved", (resolved) => {
  if (resolved.name !== handoff.name) return;
  const accepted = resolved.state === v1.HandoffState.HANDOFF_STATE_ACCEPTED;
  console.log(`handoff ${accepted ? "accepted" : "not accepted"} by ${resolved.resolvedBy || "nobody (expired)"}`);
});
// #endregion resolved

declare function confirm(question: string): boolean;
