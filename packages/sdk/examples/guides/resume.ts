// Code of docs/guides/sdk-resume.md; compiled with the SDK so the guide cannot rot.
import { ContinuityError, resumeCheckpoint, type ContinuityClient, type Replica } from "@continuity/sdk";

declare const client: ContinuityClient;
declare const replica: Replica;
declare function openLesson(resource: string, position: string, state: unknown): void;

// #region checkpoint
const saved = await replica.checkpoint({
  checkpointId: "intro-to-sql-bookmark",
  streams: ["intro-to-sql-progress"],
  resume: { activityType: "org.example.lesson", resource: "intro-to-sql", position: "lesson-4/t=312" },
});
// #endregion checkpoint

// #region resume
try {
  const { resume, streams } = await resumeCheckpoint(client, saved.name);
  for (const stream of streams) {
    console.log(`${stream.name} at version ${stream.version}, head ${stream.headHash}`);
  }
  const course = streams.find((stream) => stream.kind === "json");
  openLesson(resume.resource, resume.position, course?.kind === "json" ? course.state : undefined);
} catch (error) {
  const failure = ContinuityError.from(error);
  if (failure.reason === "CHECKPOINT_NOT_FOUND") console.log("nothing to resume");
  else if (failure.reason === "INTEGRITY_CHECK_FAILED") console.error("the server's data does not verify", failure.message);
  else throw failure;
}
// #endregion resume

// #region list
const { checkpoints } = await client.checkpoints.listCheckpoints({ parent: replica.subject, pageSize: 10 });
for (const checkpoint of checkpoints) console.log(checkpoint.name, checkpoint.resume?.position, checkpoint.createTime);
// #endregion list
